"""Measuring colourised output: image metrics, flicker metrics and sequence evaluation
(``streamcolor eval``)."""
