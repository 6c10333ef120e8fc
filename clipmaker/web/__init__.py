"""The page for people: static HTML, CSS and JavaScript shipped inside the package.

No build step: the files under ``static/`` are what the browser runs. ``routes`` serves them.
"""
