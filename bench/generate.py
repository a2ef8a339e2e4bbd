"""Seeded generator of realistic synthetic admission records (NDJSON on stdout).

    python bench/generate.py --count 100000 --seed 7 > stays.ndjson

Diagnoses, vitals and labs follow plausible distributions per condition; some sections are left out, as in
real extracts. No real patient data is used or needed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone

# condition: (ICD-10-CM codes, vital/lab shifts, likely treatments)
CONDITIONS = {
    "pneumonia": (["J18.9", "J15.9", "J13"], {"hr": 15, "rr": 6, "spo2": -6, "temp": 1.0, "wbc": 6},
                  ["iv_antibiotic", "oxygen", "iv_fluids"]),
    "heart_failure": (["I50.9", "I50.23", "I11.0"], {"hr": 10, "rr": 5, "spo2": -4, "bnp": 900, "sbp": 15},
                      ["iv_medication", "oxygen", "telemetry"]),
    "copd": (["J44.1", "J44.0"], {"rr": 8, "spo2": -7, "paco2": 12, "ph": -0.06},
             ["iv_medication", "oxygen", "noninvasive_ventilation"]),
    "chest_pain": (["R07.9", "I20.0", "I21.4"], {"hr": 8, "trop": 0.4}, ["telemetry", "iv_medication"]),
    "sepsis": (["A41.9", "R65.20", "R65.21"], {"hr": 30, "rr": 8, "sbp": -30, "temp": 1.6, "lactate": 2.5,
                                               "wbc": 9}, ["iv_antibiotic", "iv_fluids", "vasopressor",
                                                           "icu_care", "mechanical_ventilation"]),
    "syncope": (["R55"], {"hr": -12, "sbp": -12}, ["telemetry", "vital_signs_q2h"]),
    "aki": (["N17.9"], {"creat": 1.8, "k": 0.9}, ["iv_fluids", "dialysis"]),
    "cellulitis": (["L03.90", "L03.115"], {"temp": 0.8, "wbc": 4}, ["iv_antibiotic"]),
    "dka": (["E11.10", "E10.10"], {"glucose": 350, "ph": -0.18, "co2": -10, "hr": 20, "k": 0.6},
            ["iv_insulin_infusion", "iv_fluids", "icu_care"]),
    "gi_bleed": (["K92.2", "K92.0"], {"hr": 22, "sbp": -25, "hgb": -5}, ["transfusion", "iv_fluids"]),
    "elective_surgery": (["I25.10", "M17.11", "C18.9"], {}, ["iv_medication"]),
}
LOINC = {"hr": ("8867-4", "/min"), "rr": ("9279-1", "/min"), "sbp": ("8480-6", "mm[Hg]"),
         "dbp": ("8462-4", "mm[Hg]"), "temp": ("8310-5", "Cel"), "spo2": ("59408-5", "%"),
         "na": ("2951-2", "mmol/L"), "k": ("2823-3", "mmol/L"), "co2": ("2028-9", "mmol/L"),
         "ph": ("2744-1", "[pH]"), "paco2": ("2019-8", "mm[Hg]"), "lactate": ("2524-7", "mmol/L"),
         "wbc": ("6690-2", "10*3/uL"), "creat": ("2160-0", "mg/dL"), "glucose": ("2345-7", "mg/dL"),
         "hgb": ("718-7", "g/dL"), "trop": ("10839-9", "ng/mL"), "bnp": ("30934-4", "pg/mL")}
NORMAL = {"hr": (82, 14), "rr": (17, 3), "sbp": (128, 20), "dbp": (76, 12), "temp": (37.0, 0.5),
          "spo2": (96, 2), "na": (138, 4), "k": (4.1, 0.5), "co2": (25, 3), "ph": (7.40, 0.04),
          "paco2": (40, 5), "lactate": (1.3, 0.6), "wbc": (8, 2.5), "creat": (1.0, 0.3),
          "glucose": (120, 35), "hgb": (13, 1.6), "trop": (0.02, 0.02), "bnp": (80, 60)}
LABS = ["na", "k", "co2", "ph", "paco2", "lactate", "wbc", "creat", "glucose", "hgb", "trop", "bnp"]
LOB = [("medicare", 0.35), ("medicare_advantage", 0.2), ("medicaid", 0.2), ("commercial", 0.25)]
IPO = ["33533", "33510", "44140", "61510"]
OUTPATIENT_PROCS = ["27447", "47562", "43239", "45378"]


def _t(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(rng: random.Random, i: int, start: datetime) -> dict:
    name = rng.choices(list(CONDITIONS), weights=[14, 12, 9, 14, 8, 8, 6, 8, 4, 6, 11])[0]
    codes, shift, likely = CONDITIONS[name]
    severity = rng.random()
    arrival = start + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
    lob = rng.choices([x for x, _ in LOB], weights=[w for _, w in LOB])[0]
    rec = {
        "id": f"stay-{i:08d}",
        "review_type": "admission",
        "patient": {"age": max(18, min(99, int(rng.gauss(64, 16)))), "sex": rng.choice(["female", "male"])},
        "coverage": {"line_of_business": lob, "plan": f"plan-{rng.randrange(40):02d}"},
        "encounter": {
            "requested_level": rng.choices(["inpatient", "observation", "critical"],
                                           weights=[60, 30, 10 + 40 * (name == "sepsis")])[0],
            "arrival_time": _t(arrival),
            "order_time": _t(arrival + timedelta(minutes=rng.randrange(60, 600))),
            "admit_source": rng.choice(["emergency"] * 4 + ["physician_referral", "transfer"]),
        },
        "diagnoses": [{"code": rng.choice(codes), "system": "icd10cm", "principal": True}],
    }
    if rng.random() < 0.85:
        rec["encounter"]["expected_midnights"] = rng.choices([0, 1, 2, 3, 5], weights=[5, 25, 30, 25, 15])[0]
    if rng.random() < 0.93:
        obs = []
        for _ in range(rng.randrange(1, 4)):  # a few sets of vitals
            when = arrival + timedelta(minutes=rng.randrange(0, 20 * 60))
            for key in ("hr", "rr", "sbp", "dbp", "temp", "spo2"):
                if rng.random() < 0.9:
                    mu, sd = NORMAL[key]
                    value = rng.gauss(mu + shift.get(key, 0) * severity * 2, sd)
                    code, unit = LOINC[key]
                    o = {"code": code, "value": round(value, 1), "unit": unit, "time": _t(when)}
                    if key == "spo2":
                        o["value"] = min(100, o["value"])
                        o["o2_device"] = rng.choice(["room_air", "room_air", "nasal_cannula"])
                    if key == "temp":
                        o["method"] = rng.choice(["oral", "oral", "tympanic", "rectal"])
                    obs.append(o)
        when = arrival + timedelta(minutes=rng.randrange(20, 180))
        for key in LABS:
            if rng.random() < (0.8 if key in ("na", "k", "co2", "wbc", "creat", "glucose", "hgb") else 0.25):
                mu, sd = NORMAL[key]
                value = max(0.0, rng.gauss(mu + shift.get(key, 0) * severity * 1.5, sd))
                code, unit = LOINC[key]
                obs.append({"code": code, "value": round(value, 3 if key == "ph" else 2), "unit": unit,
                            "time": _t(when)})
        rec["observations"] = obs
    if rng.random() < 0.9:
        rec["treatments"] = [{"type": t, "start": _t(arrival + timedelta(minutes=rng.randrange(30, 300)))}
                             for t in likely if rng.random() < 0.25 + 0.6 * severity]
    if rng.random() < 0.7:
        procs = []
        if name == "elective_surgery" or rng.random() < 0.05:
            procs.append({"code": rng.choice(IPO + OUTPATIENT_PROCS), "system": "cpt",
                          "status": "planned", "anesthesia": "general",
                          "time": _t(arrival + timedelta(hours=rng.randrange(2, 30)))})
        rec["procedures"] = procs
    if rng.random() < 0.6:
        rec["findings"] = {k: True for k, p in (("active_bleeding", 0.5 * (name == "gi_bleed")),
                                                ("ecg_acute_ischemia", 0.3 * (name == "chest_pain")),
                                                ("sudden_unconsciousness_or_disorientation", 0.03))
                           if rng.random() < p}
    return rec


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    out = sys.stdout
    for i in range(args.count):
        out.write(json.dumps(record(rng, i, start), separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
