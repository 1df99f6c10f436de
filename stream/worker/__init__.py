"""The Faust worker: wiring, agents, the scoring pipeline, metrics and index serving.

Nothing here imports stream.offline, sim, devtools or cli (tests/unit/test_layout.py).
"""
