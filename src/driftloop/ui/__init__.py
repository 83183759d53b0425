"""``driftloop ui``: the live dashboard a team watches, read from the lake and the registry.

``data`` reads what each page shows (never writes), ``charts`` draws it with Plotly, ``pages``
lays it out as HTML, ``app`` serves the pages, plotly.js from the installed package (nothing is
fetched from the internet) and the two admin actions behind the bearer token.
"""
