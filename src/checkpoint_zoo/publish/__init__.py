"""Publishing: the index, leaderboard, model cards, curves and the static page."""
