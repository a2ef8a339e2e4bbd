"""Code systems and code sets: effective-dated valuesets (ICD-10-CM prefixes, CPT lists such as the
Inpatient Only list) that rules and facts ask about."""
