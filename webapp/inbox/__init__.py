"""The inbox: every conversation the user may see, in one list (built out with messaging)."""

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("inbox", __name__)


@bp.get("/inbox")
@login_required
def index() -> str:
    return render_template("inbox/index.html")
