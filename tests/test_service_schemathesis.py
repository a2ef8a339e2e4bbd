"""Schemathesis against /openapi.json, in process (WSGI): no server error, no response that breaks the schema.

Each operation gets the key of a role it allows, through Schemathesis's own auth hook, so its checks can also
leave the key out (401 expected). The store holds an approved and a pended review first.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.auths import set_on_case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from conftest import make_record, obs
from ur_service import ROLES, openapi
from ur_service.auth import hash_key

ROLE = {fields["operationId"]: roles[0] for _, _, _, roles, fields, _ in openapi.OPERATIONS if roles}
# Known keys, stored by the fixture: the auth hook is registered at import, before any app exists.
KEYS = {role: f"ur_{i:012x}_{'k' * 43}" for i, role in enumerate(ROLES, start=1)}
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))

# Loaded from the document the app serves (the fixture checks they are equal); each test calls its own app in
# process. (schemathesis.pytest.from_fixture would load it from the app, but it breaks on pytest 9.)
schema = schemathesis.openapi.from_dict(openapi.document())
_negative = schema.config.checks.negative_data_rejection
_negative.expected_statuses = [*_negative.expected_statuses, "413"]  # a body over the limit is refused too


@schema.auth(refresh_interval=None)  # no caching: the key depends on the operation
class RoleKey:
    def get(self, case, context):
        return KEYS[ROLE.get(case.operation.definition.raw.get("operationId"), "reviewer")]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


RECORDS = (make_record(observations=[obs("8867-4", 150)], treatments=[{"type": "iv_fluids"}]),
           make_record(id="stay-pend"))


@pytest.fixture()
def seeded(app):
    """The app with the known keys, and an approved and a pended review in its store."""
    store = app.extensions["ur_store"]
    for role, key in KEYS.items():
        store.add_key(key.split("_")[1], name=f"schemathesis-{role}", role=role, key_hash=hash_key(key))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {KEYS['reviewer']}"
    for record in RECORDS:
        assert client.post("/v1/reviews", json=record).status_code == 200
    assert client.get("/openapi.json").get_json() == schema.raw_schema
    return app


@schema.parametrize()
@SETTINGS
def test_every_operation_conforms_to_the_document(case, seeded):
    case.operation.schema.app = seeded  # the checks' own follow-up calls go to this app too
    # Not positive_data_acceptance: a record can match the schema and still be refused (400) for what JSON
    # Schema cannot say — an impossible date such as 0000-00-00, a time before arrival, a unit the fact does not
    # take. Every other check runs, server errors and response conformance first.
    case.call_and_validate(app=seeded, excluded_checks=[positive_data_acceptance])


def test_following_the_links_from_a_new_review_conforms(seeded):
    """Stateful: POST /v1/reviews, then GET it and decide it through the document's links (200 and 201 bodies)."""
    statuses: list[tuple[str, int]] = []

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"app": seeded}

        def before_call(self, case):
            # Stateful steps do not pass through the auth hook: apply it here, the way Schemathesis does, so
            # ignored_auth knows the key is real and probes the same call without it and with a wrong one.
            set_on_case(case, schemathesis.AuthContext(operation=case.operation, app=seeded), None)
            if case.operation.label == "POST /v1/reviews":
                # Generated records are fuzzed above (and mostly refused: impossible dates); here the point is
                # to follow the links from a stored review, so post valid ones, approved and pended in turn.
                case.body = RECORDS[len(statuses) % 2]

        def after_call(self, response, case):
            super().after_call(response, case)
            statuses.append((case.operation.label, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, excluded_checks=[positive_data_acceptance], transport_kwargs=kwargs,
                                   recorder=self.recorder)

    schema.app = seeded
    Workflow.run(settings=settings(SETTINGS, max_examples=15, stateful_step_count=6))
    assert ("GET /v1/reviews/{review_id}", 200) in statuses
    assert ("POST /v1/reviews/{review_id}/determination", 201) in statuses
