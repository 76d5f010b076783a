"""Browser tests: one patience for every ``expect``.

Playwright's default of 5 s was passed by a console view that renders after three API calls
when the suite ran on a loaded 2-core machine; 15 s keeps a real failure a failure (an
element that never appears still fails) without depending on the machine's load.
"""

from playwright.sync_api import expect

expect.set_options(timeout=15_000)
