"""DTR, open: the documentation questionnaire of a pended review, and its answers re-reviewing the stay.

    GET  /fhir/Questionnaire/review-{review_id}                            reviewer, physician
    GET  /fhir/Questionnaire/review-{review_id}/$questionnaire-package     reviewer, physician
    POST /fhir/Questionnaire/$questionnaire-package                        reviewer, physician
    GET  /fhir/Questionnaire/documentation?fact=…                          reviewer, physician
    POST /fhir/QuestionnaireResponse                                       reviewer

The package is DTR's ``$questionnaire-package`` output (a Parameters whose PackageBundle holds the Questionnaire)
with a QuestionnaireResponse in progress pre-filled from the chart. A completed response posted back adds its
answers to the review's record, each naming the response as its source; the stay is reviewed again, stored as a new
review that ``follows`` the first, and the new decision is the answer (its trail names the answers as evidence).
The ``documentation`` questionnaire asks for a list of facts by name, with nothing pre-filled: the one a CDS Hooks
card links to, for a screen that is not stored.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, current_app, g, request

from ur_engine.decision import missing_words
from ur_engine.errors import RecordError
from ur_engine.intake.answers import add_answers, read_response
from ur_engine.output.questionnaire import checked, prefilled, questionnaire

from . import inputs, reviews
from .auth import require
from .fhir_common import fhir_response, operation_outcome
from .http import json_response
from .store import Conflict

blueprint = Blueprint("fhir_dtr", __name__)
REVIEW_QUESTIONNAIRE = re.compile(r"(?:^|/)Questionnaire/review-([0-9A-Za-z]{1,40})(?:\|.*)?$")
DOCUMENTATION = "documentation"
REVIEW_TYPES = ("admission", "continued_stay", "discharge")


def questionnaire_url(review_id: str) -> str:
    return f"{request.url_root}fhir/Questionnaire/review-{review_id}"


def _stored(review_id: str):
    found = current_app.extensions["ur_store"].get_review(review_id)
    if found is None:
        return None, None, operation_outcome(404, [("", f"no review {review_id}")], "not-found")
    row = found[0]
    return inputs.loads(row["record"]), inputs.loads(row["decision"]), None


def _review_questionnaire(review_id: str):
    record, decision, missing = _stored(review_id)
    if missing is not None:
        return None, None, missing
    library = current_app.extensions["ur_engine"].library
    q = questionnaire(decision, library, qid=f"review-{review_id}", url=questionnaire_url(review_id),
                      title=f"Documentation still needed for stay {record.get('id')}")
    return q, decision, None


@blueprint.get("/fhir/Questionnaire/review-<review_id>")
@require("reviewer", "physician")
def get_questionnaire(review_id):
    g.review_id = review_id
    q, _, missing = _review_questionnaire(review_id)
    return missing or fhir_response(q)


@blueprint.get("/fhir/Questionnaire/review-<review_id>/$questionnaire-package")
@require("reviewer", "physician")
def questionnaire_package(review_id):
    g.review_id = review_id
    bundle, missing = _package(review_id)
    if missing is not None:
        return missing
    return fhir_response(checked({"resourceType": "Parameters", "parameter": [
        {"name": "PackageBundle", "resource": bundle}]}))


@blueprint.post("/fhir/Questionnaire/$questionnaire-package")
@require("reviewer", "physician")
def questionnaire_packages():
    """DTR's operation as a DTR client calls it: Parameters naming questionnaires by canonical (a review's, as the
    coverage information of a pend gives it) → one PackageBundle each. Other inputs (coverage, order) are not
    needed to build ours and are not read."""
    if not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
        return operation_outcome(415, [("", "send the Parameters as application/fhir+json")], "not-supported")
    try:
        body = inputs.loads(request.get_data())
    except RecordError as exc:
        return operation_outcome(400, _issues(exc))
    params = body.get("parameter") if isinstance(body, dict) and body.get("resourceType") == "Parameters" else None
    if not isinstance(params, list):
        return operation_outcome(400, [("Parameters", "send a Parameters resource with a parameter list")])
    asked = [(i, p.get("valueCanonical")) for i, p in enumerate(params)
             if isinstance(p, dict) and p.get("name") == "questionnaire"]
    if not asked:
        return operation_outcome(400, [("Parameters.parameter", "name a questionnaire: a parameter 'questionnaire' "
                                        "with valueCanonical …/fhir/Questionnaire/review-{review_id}")])
    out = []
    for i, canonical in asked:
        where = f"Parameters.parameter[{i}].valueCanonical"
        found = REVIEW_QUESTIONNAIRE.search(str(canonical or ""))
        parts = urlsplit(str(canonical or ""))
        if found is not None:
            bundle, missing = _package(found.group(1))
        elif parts.path.endswith(f"/Questionnaire/{DOCUMENTATION}"):  # a CDS Hooks card's: nothing to pre-fill
            query = parse_qs(parts.query)
            q, missing = _documentation(str(canonical), query.get("fact", []), query.get("review_type", []),
                                        f"{where}?")
            bundle = None if missing else checked({"resourceType": "Bundle", "type": "collection",
                                                   "entry": [{"fullUrl": q["url"], "resource": q}]})
        else:
            return operation_outcome(400, [(where, "not a questionnaire of this service: …/fhir/Questionnaire/"
                                                   "review-{id}, or …/fhir/Questionnaire/documentation?fact=…")])
        if missing is not None:
            return missing
        out.append({"name": "PackageBundle", "resource": bundle})
    return fhir_response(checked({"resourceType": "Parameters", "parameter": out}))


def _package(review_id: str):
    """The PackageBundle of a review: its Questionnaire and a QuestionnaireResponse pre-filled from the chart."""
    q, decision, missing = _review_questionnaire(review_id)
    if missing is not None:
        return None, missing
    library = current_app.extensions["ur_engine"].library
    response = prefilled(q, decision.get("criteria") or (), library.facts)
    return checked({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": q["url"], "resource": q}, {"resource": response}]}), None


@blueprint.get("/fhir/Questionnaire/documentation")
@require("reviewer", "physician")
def documentation_questionnaire():
    """The questions for facts named in ``fact`` (repeated, or comma-separated), in the serving library's words."""
    q, refused = _documentation(request.url, request.args.getlist("fact"), request.args.getlist("review_type"))
    return refused or fhir_response(q)


def _documentation(url: str, facts: list[str], review_type: list[str], where: str = ""):
    """(the documentation Questionnaire at ``url``, None), or (None, an OperationOutcome saying what is wrong)."""
    library = current_app.extensions["ur_engine"].library
    names = [n for value in facts for n in value.split(",") if n]
    unknown = [n for n in names if n not in library.facts.catalog]
    if not names or unknown:
        return None, operation_outcome(400, [(f"{where}fact", f"unknown fact {n!r}") for n in unknown]
                                       or [(f"{where}fact", "name at least one fact")])
    kind = review_type[-1] if review_type else "admission"
    if kind not in REVIEW_TYPES or len(review_type) > 1:
        return None, operation_outcome(400, [(f"{where}review_type", f"one of {', '.join(REVIEW_TYPES)}")])
    words = missing_words(library, kind, list(dict.fromkeys(names)))
    return questionnaire({"missing_info": words}, library, qid=DOCUMENTATION, url=url,
                         title="Documentation the admission criteria need"), None


@blueprint.post("/fhir/QuestionnaireResponse")
@require("reviewer")
def answer():
    if not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
        return operation_outcome(415, [("", "send the QuestionnaireResponse as application/fhir+json")],
                                 "not-supported")
    try:
        raw = inputs.loads(request.get_data())
        response = read_response(raw)
    except RecordError as exc:
        return operation_outcome(400, _issues(exc))
    found = REVIEW_QUESTIONNAIRE.search(str(response.get("questionnaire") or ""))
    if found is None:
        return operation_outcome(400, [("QuestionnaireResponse.questionnaire",
                                        "name the questionnaire of a review: …/fhir/Questionnaire/review-{review_id}")])
    review_id = found.group(1)
    store = current_app.extensions["ur_store"]
    stored = store.get_review(review_id)
    if stored is None:
        return operation_outcome(404, [("", f"no review {review_id}")], "not-found")
    row, determination = stored
    # Answers re-open nothing a physician has decided, and never fork a stay's reviews into two open ones.
    # Checked here to answer at once, and again in the transaction that would store the new review.
    if determination is not None:
        return _conflict(review_id, None)
    later = store.followed_by(review_id)
    if later is not None:
        return _conflict(review_id, later)
    rid = response.get("id") or uuid.uuid4().hex
    source = f"QuestionnaireResponse/{rid}"
    library = current_app.extensions["ur_engine"].library
    try:
        merged = add_answers(inputs.loads(row["record"]), response, library.facts, source)
        new = reviews.submit(current_app, merged, g.actor, row["urgency"],
                             follows={"review_id": review_id, "source": source})
    except RecordError as exc:
        return operation_outcome(400, _issues(exc))
    except Conflict as exc:  # decided or answered while this answer was being reviewed
        return _conflict(review_id, exc.followed_by)
    g.review_id = new["review_id"]
    res = json_response(new, 201)
    res.headers["Location"] = f"/v1/reviews/{new['review_id']}"
    return res


def _conflict(review_id: str, later: str | None):
    if later is None:
        why = f"a physician has decided review {review_id}: send a new request for the stay"
    else:
        why = f"review {review_id} was answered already; answer the questionnaire of review {later}, which follows it"
    return operation_outcome(409, [("QuestionnaireResponse.questionnaire", why)], "conflict")


def _issues(exc: RecordError) -> list[tuple[str, str]]:
    return [(e.path or "", e.message) for e in getattr(exc, "errors", [exc])]
