"""The sandbox gateway with seeded fault modes, for the reliability suite (issue 18).

:class:`FaultySandboxGateway` is :class:`~prorata.payments.sandbox.SandboxGateway` (its charges
are the same rows, so the invariants read them) whose first charge of an idempotency key can
meet a fault, drawn from the process's :class:`FaultPlan` (:func:`faults_inject`):

============================  ===================================================================
``decline``                    the card is declined (recorded: a replay of the key says declined)
``insufficient_funds``         refused for insufficient funds (recorded)
``authentication_required``    the bank asks for 3-D Secure (recorded; a challenge page with the
                               customer present, none off session)
``timeout_before``             :class:`GatewayTimeout` raised before anything is charged: the
                               gateway never saw the key (``lookup`` says ``None``)
``timeout_after``              the card is charged, then :class:`GatewayTimeout` is raised: the
                               answer is lost (``lookup`` and a replay say succeeded)
``http_500``                   :class:`GatewayServerError` raised, nothing charged (``None``)
``slow``                       the answer comes after :attr:`FaultPlan.slow_seconds` (real time)
============================  ===================================================================

A replay of a key the gateway recorded answers as the first time, whatever the plan: faults are
the network's and the bank's, the gateway's idempotency holds. ``lookup_fails`` makes every
lookup raise :class:`GatewayServerError` (the gateway down when the reconciliation job asks).

Test-only: select it with ``PRORATA_PAYMENT_GATEWAY=prorata.payments.sandbox_faults.FaultySandboxGateway``;
with no plan injected it is the sandbox. The plan lives in this process only.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from enum import StrEnum

from prorata.payments.gateway import ChargeResult
from prorata.payments.models import SandboxBehaviour, SandboxCharge
from prorata.payments.sandbox import SandboxGateway
from prorata_core.money import Money


class Fault(StrEnum):
    DECLINE = "decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    AUTHENTICATION_REQUIRED = "authentication_required"
    TIMEOUT_BEFORE = "timeout_before"
    TIMEOUT_AFTER = "timeout_after"
    HTTP_500 = "http_500"
    SLOW = "slow"


_RECORDED_AS: dict[Fault, SandboxBehaviour] = {
    Fault.DECLINE: SandboxBehaviour.DECLINE,
    Fault.INSUFFICIENT_FUNDS: SandboxBehaviour.INSUFFICIENT_FUNDS,
    Fault.AUTHENTICATION_REQUIRED: SandboxBehaviour.AUTHENTICATE,
}


class GatewayTimeout(TimeoutError):
    """The gateway did not answer in time (what an HTTP client raises)."""


class GatewayServerError(ConnectionError):
    """The gateway answered HTTP 500."""


@dataclass
class FaultPlan:
    """Which first charges meet a fault: ``script``, the faults of the next first charges in turn
    (``None``: no fault for that one), then ``rates`` (fault → probability per first charge,
    summing to at most 1) drawn from a generator seeded with ``seed``, so a run replays.
    ``injected`` lists (idempotency key, fault) as they happen; ``drawn`` counts the first
    charges that were drawn for."""

    script: list[Fault | None] = field(default_factory=list)
    rates: dict[Fault, float] = field(default_factory=dict)
    seed: int = 0
    lookup_fails: bool = False
    slow_seconds: float = 0.05
    injected: list[tuple[str, Fault]] = field(default_factory=list)
    drawn: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311  (test faults, not secrets)

    def draw(self) -> Fault | None:
        self.drawn += 1
        if self.script:
            return self.script.pop(0)
        roll, total = self._random.random(), 0.0
        for fault, rate in self.rates.items():
            total += rate
            if roll < total:
                return fault
        return None


_plan: FaultPlan | None = None


def faults_inject(plan: FaultPlan | None) -> FaultPlan | None:
    """Use ``plan`` for the charges of this process from now on (``None``: no faults)."""
    global _plan
    _plan = plan
    return plan


class FaultySandboxGateway(SandboxGateway):
    """The sandbox, with the faults of the injected :class:`FaultPlan` (module docstring)."""

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str,
        off_session: bool = False, return_url: str = "",
    ) -> ChargeResult:
        plan = _plan
        fault = None
        if plan is not None and not SandboxCharge.objects.filter(
                idempotency_key=idempotency_key).exists():
            fault = plan.draw()
        if fault is not None:
            plan.injected.append((idempotency_key, fault))  # type: ignore[union-attr]
        if fault in (Fault.TIMEOUT_BEFORE, Fault.HTTP_500):
            error = GatewayTimeout if fault is Fault.TIMEOUT_BEFORE else GatewayServerError
            raise error(f"sandbox fault {fault} for {idempotency_key}")
        if fault is Fault.SLOW:
            time.sleep(plan.slow_seconds)  # type: ignore[union-attr]
        self._forced = _RECORDED_AS.get(fault) if fault is not None else None
        try:
            result = super().charge(token=token, amount=amount, idempotency_key=idempotency_key,
                                    description=description, off_session=off_session,
                                    return_url=return_url)
        finally:
            self._forced = None
        if fault is Fault.TIMEOUT_AFTER:
            raise GatewayTimeout(f"sandbox fault {fault} for {idempotency_key} (charged)")
        return result

    def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        if _plan is not None and _plan.lookup_fails:
            raise GatewayServerError(f"sandbox fault: lookup of {idempotency_key}")
        return super().lookup(idempotency_key=idempotency_key)
