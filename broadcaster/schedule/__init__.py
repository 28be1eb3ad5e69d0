"""What drives the flow: schedules, content jobs, passes and the daemon.

``scheduler`` decides which jobs are due, ``jobs`` runs a content job into the
queue, ``passes`` is one pass (fire, welcome, dispatch), ``daemon`` repeats
passes until stopped, ``status`` reports on all of it.
"""
