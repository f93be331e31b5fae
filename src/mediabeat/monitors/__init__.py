"""Monitors: saved queries matched against each new article as it is stored, and their deliveries.

query (the adapter to the query language), matcher (the org's compiled monitors, the
prefilter and the watermark catch-up), delivery (webhooks, mail, digests, cool-downs,
spikes), atom (the secret feed) and rules (the pure decisions: due, spike, backoff).
"""
