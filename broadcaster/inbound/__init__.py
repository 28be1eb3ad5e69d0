"""Residents talk back: the inbound server and what it does with each message.

- ``platforms/``: one module per platform, verifying and reading its callbacks;
- ``crypto``: the platforms' signatures and ciphers;
- ``message``: ``InboundMessage`` / ``InboundJoin``, the shapes every later step reads;
- ``journal``: the durable, day-partitioned resident-message log (kept for ``defaults.retention``);
- ``server``: Starlette routes on uvicorn (``serve``, ``daemon --serve``);
- ``worker``: tickets, knowledge base, misses, joins, after the platform got its answer;
- ``replies`` / ``reply_channels``: answers through the outbox and the platforms' reply paths.

Nothing here is imported by ``run-once`` or ``announce`` (start-up time).
"""
