"""Outbound HTTP, in one place: every request the package makes goes through here.

- ``client``: ``HttpClient`` and its factories (``webhook_client``,
  ``fetch_client``, ``shared_client``): timeouts, a total deadline, one user
  agent, a size cap, no proxy or ``.netrc`` from the environment;
- ``urls``: the URL policy, parsed the way the HTTP client parses;
- ``deadline``: the total deadline of one request, body included.

The package ``__init__`` imports nothing: config validation needs ``urls``
without paying for ``requests`` at start-up.
"""
