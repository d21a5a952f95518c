"""Who may read and change the plan and read its reports: the plan's rules, in one place.

They move into the library's access policy (privacy/access.py) when it lands, in one step.
"""

from __future__ import annotations

from geo_monitor.errors import AccessDeniedError
from geo_monitor.privacy.tokens import Principal

INTERNAL = frozenset({"admin", "planner", "police", "outreach"})
RULES = {
    "plan.read": INTERNAL,                          # actions, budgets, updates, places (no event data)
    "plan.write": frozenset({"admin", "planner"}),  # load a plan file, append an update
    "report.read": frozenset({"admin", "planner"}),  # the partners' edition: indicators from the events
    "report.public": INTERNAL | {"public"},         # built from published releases only
}


def check_plan_access(principal: Principal, action: str) -> None:
    """Raise AccessDeniedError unless the principal's role may do ``action`` (a key of RULES)."""
    if principal.role not in RULES[action]:
        who = "the public" if principal.role == "public" else f"the {principal.role} role"
        raise AccessDeniedError(f"{who} may not {action.replace('.', ' ')}"
                                + (": this needs a token" if principal.role == "public" else ""))
