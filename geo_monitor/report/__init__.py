"""The yearly evaluation report: its data (planners' and public editions), charts and HTML."""
