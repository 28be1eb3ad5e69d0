"""Getting queued deliveries to the platforms.

``dispatch`` sends due deliveries on a thread pool, ``ratelimit`` keeps each
robot inside its platform's limits, ``splitting`` cuts a message into numbered
parts that fit, ``markdown`` writes one Markdown source in each platform's dialect.
"""
