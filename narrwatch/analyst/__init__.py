"""The analyst's tools: review, label, calibrate, backtest, try a text, promote a cluster."""
