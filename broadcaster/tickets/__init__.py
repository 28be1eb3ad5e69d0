"""Work orders (工单): a resident's complaint becomes a ticket that reaches the grid
worker responsible for the group, carries a deadline, and comes back answered.

- ``model``: the Ticket row, its statuses and its JSON; names masked for groups.
- ``states``: which status changes are allowed (the contract's table).
- ``deadlines``: working days on the statutory calendar (调休 included), hours, days.
- ``ids``: short readable numbers, ``GL-1123-0042``.
- ``store``: tickets and their history, durable, locked, partitioned by day.
- ``matching``: which category a message is about, and whether it is urgent.
- ``notices``: every message about a ticket, rendered and queued through the outbox once.
- ``desk``: opening and changing tickets (what commands and the intake call).
- ``intake``: ``open_from_message(app, msg)`` for the inbound server.
- ``reminders``: the pass run by the daemon and ``run-once``: reminders, overdue
  alerts, morning digests, acknowledgements left over by a crash, archiving.
- ``listing``: ``tickets list`` filters, and the CSV of ``tickets export`` (monthly report).

Importing this package loads nothing: ``run-once`` reaches only ``reminders``' cheap check.
"""
