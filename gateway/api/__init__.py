"""The merchant API: one module per resource. Handlers parse, call one service function, render."""
