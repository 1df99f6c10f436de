"""stream.offline.backtest.variants."""

from __future__ import annotations

import pytest

from stream.errors import ConfigError
from stream.offline import backtest as bt


def test_parse_variants() -> None:
    assert bt.parse_variants(None) == bt.DEFAULT_VARIANTS
    assert bt.parse_variants("taste_only, popularity,taste_only") == ("taste_only", "popularity")
    with pytest.raises(ConfigError, match="nope"):
        bt.parse_variants("sentiment_aware,nope")
