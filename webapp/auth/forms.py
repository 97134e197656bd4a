from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])


class SetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password", validators=[DataRequired("Choose a password."), Length(max=1000)]
    )
    repeated = PasswordField("The same again", validators=[DataRequired("Type it again."), Length(max=1000)])
