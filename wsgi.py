from webapp import create_app
from webapp.scheduling import clock

app = create_app()
# Served (the dev server, gunicorn): the periodic work runs in a thread here when CLOCK_IN_PROCESS says so
# (by default with in-process dispatch); otherwise `flask --app wsgi clock` runs it.
clock.start_in_process(app)
