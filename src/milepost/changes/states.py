"""State machines of change orders and extensions: one transition table each. Pure."""

from __future__ import annotations

from enum import StrEnum

from milepost.errors import IllegalTransition


class ChangeStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    SUPERSEDED = "superseded"  # another change or a plan move made it stale before an answer


class ChangeAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    SUPERSEDE = "supersede"


class ExtensionStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    LAPSED = "lapsed"  # the milestone moved on (approved, cancelled, disputed) before an answer


class ExtensionAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    LAPSE = "lapse"


CHANGE_TRANSITIONS: dict[tuple[ChangeStatus, ChangeAction], ChangeStatus] = {
    (ChangeStatus.PROPOSED, ChangeAction.ACCEPT): ChangeStatus.ACCEPTED,
    (ChangeStatus.PROPOSED, ChangeAction.DECLINE): ChangeStatus.DECLINED,
    (ChangeStatus.PROPOSED, ChangeAction.SUPERSEDE): ChangeStatus.SUPERSEDED,
}

EXTENSION_TRANSITIONS: dict[tuple[ExtensionStatus, ExtensionAction], ExtensionStatus] = {
    (ExtensionStatus.REQUESTED, ExtensionAction.ACCEPT): ExtensionStatus.ACCEPTED,
    (ExtensionStatus.REQUESTED, ExtensionAction.DECLINE): ExtensionStatus.DECLINED,
    (ExtensionStatus.REQUESTED, ExtensionAction.LAPSE): ExtensionStatus.LAPSED,
}


def next_change_status(current: ChangeStatus, action: ChangeAction) -> ChangeStatus:
    try:
        return CHANGE_TRANSITIONS[(current, action)]
    except KeyError:
        raise IllegalTransition(
            f"cannot {action} a change order that is {current}: it has already been answered",
            code=f"change_{current}", status_now=str(current),
        ) from None


def next_extension_status(current: ExtensionStatus, action: ExtensionAction) -> ExtensionStatus:
    try:
        return EXTENSION_TRANSITIONS[(current, action)]
    except KeyError:
        raise IllegalTransition(
            f"cannot {action} an extension request that is {current}: it has already been answered",
            code=f"extension_{current}", status_now=str(current),
        ) from None
