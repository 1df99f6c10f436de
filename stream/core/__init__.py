"""Pure state and ranking maths: no faust, onnxruntime or faiss imports allowed here.

The worker and the replay call the same entry points, all in ``stream.core.state``:

- ``fold_user(UserState, ReviewObs | ChatObs | ClickObs, UserParams) -> (UserState, UserUpdate)``
- ``fold_item(ItemState, ReviewObs | ClickObs, ItemParams) -> (ItemState, ItemUpdate)``
- ``recommend(UserState, index=..., affect=..., popular=..., rank_params=..., user_params=...,
  now_ms=...) -> Recommendation``, with ``popular`` from ``popularity.top_popular``.

States are frozen and serialise with ``to_dict``/``from_dict`` (JSON-safe) for Faust tables.
Times are epoch milliseconds taken from the events, never the wall clock.
"""
