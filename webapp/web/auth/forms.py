from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from webapp.web.forms import FlaskForm


# autocomplete tells password managers which password a field is: the one kept for this sign-in, or a
# new one to keep.
class LoginForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[DataRequired("Enter your email."), Length(max=254)],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


class SetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired("Choose a password."), Length(max=1000)],
        render_kw={"autocomplete": "new-password"},
    )
    repeated = PasswordField(
        "The same again",
        validators=[DataRequired("Type it again."), Length(max=1000)],
        render_kw={"autocomplete": "new-password"},
    )
