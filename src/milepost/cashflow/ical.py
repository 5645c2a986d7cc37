"""An iCalendar feed of a user's money deadlines (SPEC §3).

One event per deadline, at the exact UTC time:
* `due` — an in-progress milestone's due date (both parties; the seller delivers by then);
* `review` — a delivered milestone's review deadline: it is auto-approved then (both parties);
* `clears` — a clearing lot of the seller becomes available.

UIDs are stable (`<kind>-<milestone or lot id>@milepost`), so a calendar that re-subscribes updates
an event whose date moved (a revision extends the due date) instead of duplicating it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from icalendar import Calendar, Event
from sqlalchemy.orm import Session

from milepost.cashflow import repository as repo
from milepost.clock import as_utc
from milepost.money import format_money
from milepost.orders.states import MilestoneStatus


@dataclass(frozen=True, slots=True)
class Deadline:
    kind: str  # due | review | clears
    at: datetime
    uid: str
    summary: str
    description: str


def deadlines_for(session: Session, user_id: str) -> list[Deadline]:
    """Every upcoming or overdue deadline of the user's open orders and clearing lots, by time."""
    result: list[Deadline] = []
    seen: set[str] = set()
    rows = [*repo.open_milestone_rows(session, seller_id=user_id), *repo.open_milestone_rows(session, buyer_id=user_id)]
    for r in rows:
        order_title, currency, milestone_id, seq, title, status, amount = r[1], r[2], r[12], r[13], r[14], r[15], r[16]
        label = f"{order_title} — #{seq} {title}"
        money = format_money(int(amount), currency)
        if status == MilestoneStatus.IN_PROGRESS and r[22] is not None:
            uid = f"due-{milestone_id}@milepost"
            if uid not in seen:
                seen.add(uid)
                result.append(Deadline("due", as_utc(r[22]), uid, f"Due: {label}",
                                       f"Milestone #{seq} of {order_title} ({money}) is due."))
        if status == MilestoneStatus.DELIVERED and r[23] is not None:
            uid = f"review-{milestone_id}@milepost"
            if uid not in seen:
                seen.add(uid)
                result.append(Deadline("review", as_utc(r[23]), uid, f"Review deadline: {label}",
                                       f"Milestone #{seq} of {order_title} ({money}) is auto-approved "
                                       "unless the buyer answers by then."))
    for lot in repo.open_lot_rows(session, user_id):
        lot_id, order_title, seq, title, currency, net, available_at = lot[0], lot[2], lot[4], lot[5], lot[6], lot[9], lot[11]
        if int(net) <= 0:
            continue
        money = format_money(int(net), currency)
        result.append(Deadline("clears", as_utc(available_at), f"clears-{lot_id}@milepost",
                               f"Clears: {money} — {order_title} #{seq}",
                               f"{money} from #{seq} {title} of {order_title} becomes available to pay out."))
    return sorted(result, key=lambda d: (d.at, d.uid))


def calendar_for(session: Session, user_id: str, *, now: datetime) -> bytes:
    """The user's deadlines as an RFC 5545 calendar."""
    cal = Calendar()
    cal.add("prodid", "-//Milepost//cash flow deadlines//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Milepost deadlines")
    for d in deadlines_for(session, user_id):
        event = Event()
        event.add("uid", d.uid)
        event.add("dtstamp", now)
        event.add("dtstart", d.at)
        event.add("dtend", d.at)
        event.add("summary", d.summary)
        event.add("description", d.description)
        event.add("categories", [d.kind])
        cal.add_component(event)
    return cal.to_ical()
