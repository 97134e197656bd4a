"""The Flask extensions, created unbound here and bound to the app in create_app."""

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

from webapp import database  # noqa: F401  # SQLite's settings on every connection (its listeners)
from webapp.models.base import Base, render_item

# A commit does not expire what the request already loaded: the request goes on rendering with the
# objects it has (reloading the user, its roles and the page's objects after every commit doubled the
# queries of a send); code that must see other transactions' writes refreshes explicitly.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate(render_as_batch=True, compare_type=True, render_item=render_item)
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
