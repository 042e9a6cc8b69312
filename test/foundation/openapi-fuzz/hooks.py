"""Schemathesis hooks for test/foundation/openapi-fuzz.e2e-spec.ts (loaded through SCHEMATHESIS_HOOKS)."""

import random

import schemathesis

# The server trusts loopback proxies in this run (TRUSTED_PROXIES=loopback), so every request can
# come from its own client address: the per-route rate limits (e.g. 20 registrations an hour per
# address) then count each request apart instead of ending the run in 429s.
_addresses = random.Random(20261205)


@schemathesis.hook
def before_call(context, case, kwargs):
    address = "10.{}.{}.{}".format(*(_addresses.randint(1, 254) for _ in range(3)))
    case.headers = {**(case.headers or {}), "X-Forwarded-For": address}


# Error codes of rules no schema can state: they depend on stored data (an unknown template, the
# caller's plan, a template's name that an update may not change) or relate fields to each other
# (a template's default_port must be one of its ports; root in the container only with an image of
# one's own and run_as_non_root false, docs/templates.md). A schema-valid request may meet them; any other 422 code means the schema allowed a value
# the validation refuses.
BUSINESS_RULES = {
    "unknown_template",
    "deleted_template",
    "deprecated_template",
    "plan_limit",
    "immutable",
    "unique",
    "defaultPort",
    "nonRoot",
    "ownImageRunsAsUser",
    "systemStepsNeedRoot",
}


@schemathesis.check
def refusals_of_valid_data_name_a_business_rule(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        errors = []
    codes = {error.get("code") for error in errors if isinstance(error, dict)}
    unexpected = sorted(str(code) for code in codes - BUSINESS_RULES)
    if not codes or unexpected:
        raise AssertionError(
            "Schema-valid data was refused by validation (422 with codes {}): the schema allows what the DTO refuses".format(
                ", ".join(unexpected) or "none"
            )
        )
    return None
