"""The office's figures: what was published, delivered and answered, and what failed.

- ``tally``: the delivery figures of some announcements, small enough to keep per day;
- ``history``: one tally per day of a window, read from the queue and the archive;
- ``providers``: the figures other parts keep (resident messages, work orders), zeros
  where there are none;
- ``figures``: ``build(app, since, by)``, the one document ``stats --json`` prints and
  the dashboard draws;
- ``dimensions``: groups by street, community, grid or platform;
- ``svg`` and ``dashboard``: the figures as one self-contained HTML page.

Importing this package loads nothing.
"""
