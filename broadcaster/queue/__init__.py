"""The durable queue: announcements and their per-group deliveries.

``announce`` turns staff input into a message, ``outbox`` stores it as one
delivery row per targeted group, ``deliverylog`` reads what happened to them.
"""
