"""Admin → Organisation → Candidate contact: message templates per channel and kind, with a live
preview, and the approved WhatsApp templates. The rules are webapp.messaging.templates'."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import placeholders, templates
from webapp.models import (
    CHANNEL_LABELS,
    TEMPLATE_AUDIENCES,
    TEMPLATE_KINDS,
    MessageTemplate,
    Organization,
    WhatsappTemplate,
)
from webapp.web import refusals
from webapp.web.admin.forms import SubmitForm, TemplateForm, WhatsappTemplateForm
from webapp.web.admin.routes import bp
from webapp.web.guards import permission_required

templates_right = permission_required(permissions.ADMIN_TEMPLATES)


def _base_url() -> str:
    return current_app.config.get("PUBLIC_BASE_URL") or request.host_url


def _org_id() -> int:
    return current_user.organization_id


@bp.get("/templates", endpoint="templates")
@templates_right
def templates_index() -> str:
    return render_template("admin/templates.html", **_index(current_user.organization))


def _index(org: Organization) -> dict[str, Any]:
    kept = templates.templates_of(db.session, org.id)
    whatsapp_templates = templates.whatsapp_templates_of(db.session, org.id)
    # A channel the organisation does not have gets no section, unless templates of it were kept from
    # when it had it (an email-only customer sees email only).
    return {
        "org": org,
        "by_channel": {
            c: [t for t in kept if t.channel == c]
            for c in CHANNEL_LABELS
            if org.channel_enabled(c) or any(t.channel == c for t in kept)
        },
        "whatsapp_templates": whatsapp_templates,
        # SMS templates that go as UCS-2 only because of look-alikes: said in the list (after a save too),
        # the one-click change is in the editor.
        "plain": {
            t.id: offer
            for t in kept
            if t.channel == "sms"
            and (offer := templates.plain(templates.draft_of(t), org, current_user, _base_url()))
        },
        "show_whatsapp_templates": org.channel_enabled("whatsapp") or bool(whatsapp_templates),
        "form": SubmitForm(),
        "show_audience": _show_audience(),
    }


def _whatsapp_on() -> None:
    """New approved WhatsApp templates only for an organisation with WhatsApp (else 404)."""
    if not current_user.organization.channel_enabled("whatsapp"):
        abort(404)


def _channels(template: MessageTemplate | None) -> list[str]:
    return templates.channels_for(current_user.organization, template)


def _show_audience() -> bool:
    """Who a template is for is asked where there are prospects as well as candidates (the CRM product);
    elsewhere a template keeps what it says (a new one: both)."""
    return current_user.organization.has_crm


def _audience_choices(form: TemplateForm | WhatsappTemplateForm) -> None:
    form.audience.choices = [SelectChoice(k, v) for k, v in TEMPLATE_AUDIENCES.items()]


def _form(template: MessageTemplate | None, formdata: Any = None) -> TemplateForm:
    if formdata is not None:
        form = TemplateForm(formdata=formdata)
    elif template is not None:
        form = TemplateForm(formdata=None, obj=template)
    else:
        channel = request.args.get("channel")
        form = TemplateForm(
            formdata=None,
            channel=channel if channel in CHANNEL_LABELS else "sms",
            kind="general",
            audience="both",
        )
    channels = _channels(template)
    form.channel.choices = [SelectChoice(c, CHANNEL_LABELS[c]) for c in channels]
    if form.channel.data not in channels and formdata is None:
        form.channel.data = channels[-1] if len(channels) > 1 else channels[0]
    form.kind.choices = [SelectChoice(k, v) for k, v in TEMPLATE_KINDS.items()]
    _audience_choices(form)
    if form.audience.data == "both":
        # Shown as it will be kept (an interview invitation is for candidates; "prospects" is refused).
        form.audience.data = templates.audience_for(form.kind.data or "", "both")
    return form


def _draft(form: TemplateForm, template: MessageTemplate | None = None) -> templates.Draft:
    return templates.Draft(
        name=form.name.data or "",
        channel=form.channel.data or "",
        kind=form.kind.data or "",
        subject=form.subject.data,
        body=form.body.data or "",
        # Not asked (no CRM): the template keeps what it was for, a new one is for both.
        audience=form.audience.data or (template.audience if template else "both"),
    )


def _editor(form: TemplateForm, template: MessageTemplate | None) -> str:
    org = current_user.organization
    return render_template(
        "admin/template_form.html",
        org=org,
        form=form,
        template=template,
        placeholders=placeholders.PLACEHOLDERS,
        links=placeholders.LINKS,
        link_fixes=templates.link_fixes(form.body.data or "", form.subject.data),
        glued=templates.GLUED,
        show_audience=_show_audience(),
        audience_hint="An interview invitation is always for candidates.",
        **_preview_context(form, template),
    )


def _preview_context(form: TemplateForm, template: MessageTemplate | None = None) -> dict[str, Any]:
    draft = _draft(form, template)
    return {
        "preview": templates.preview(draft, current_user.organization, current_user, _base_url()),
        "channel": draft.channel if draft.channel in CHANNEL_LABELS else "sms",
        "needs_link": templates.needs_invitelink(draft.channel, draft.kind),
        "sample_person": templates.sample_person(draft.audience),
        "typed": draft.body,
    }


@bp.get("/templates/new")
@templates_right
def new_template() -> str:
    return _editor(_form(None), None)


@bp.post("/templates/new")
@templates_right
def create_template() -> Response:
    return _save(None)


def _template(template_id: int) -> MessageTemplate:
    return templates.get(db.session, _org_id(), template_id) or abort(404)


@bp.get("/templates/<id:template_id>")
@templates_right
def edit_template(template_id: int) -> str:
    template = _template(template_id)
    return _editor(_form(template), template)


@bp.post("/templates/<id:template_id>")
@templates_right
def update_template(template_id: int) -> Response:
    return _save(_template(template_id))


def _save(template: MessageTemplate | None) -> Response:
    form = _form(template, request.form)
    saved = refusals.submit(
        form,
        lambda: templates.save(
            db.session, current_user.organization, current_user, _draft(form, template), _base_url(), template
        ),
        lambda: _editor(form, template),
    )
    return _to_templates(f"Template “{saved.name}” saved.", f"#template-{saved.id}")


def _to_templates(message: str, anchor: str = "") -> Response:
    flash(message, "success")
    return redirect(url_for("admin.templates") + anchor, 303)


@bp.post("/templates/<id:template_id>/delete")
@templates_right
def delete_template(template_id: int) -> Response:
    template = _template(template_id)
    if not SubmitForm().validate():
        abort(400)
    name = template.name
    db.session.delete(template)
    db.session.commit()
    return _to_templates(f"Template “{name}” deleted.")


@bp.post("/templates/preview")
@templates_right
def template_preview() -> str:
    """The preview under the editor, as the admin types (htmx)."""
    form = _form(None, request.form)
    form.validate()
    return render_template("admin/_template_preview.html", **_preview_context(form))


# --- Approved WhatsApp templates -------------------------------------------------------------------


def _whatsapp(template_id: int) -> WhatsappTemplate:
    return templates.get_whatsapp(db.session, _org_id(), template_id) or abort(404)


def _whatsapp_editor(form: WhatsappTemplateForm, template: WhatsappTemplate | None) -> str:
    _audience_choices(form)
    return render_template(
        "admin/whatsapp_template_form.html",
        org=current_user.organization,
        form=form,
        template=template,
        placeholders=placeholders.PLACEHOLDERS,
        show_audience=_show_audience(),
        audience_hint="Candidates get it about a job, prospects about a community.",
    )


@bp.get("/templates/whatsapp/new")
@templates_right
def new_whatsapp_template() -> str:
    _whatsapp_on()
    return _whatsapp_editor(
        WhatsappTemplateForm(formdata=None, locale="en_GB", approved=True, audience="both"), None
    )


@bp.post("/templates/whatsapp/new")
@templates_right
def create_whatsapp_template() -> Response:
    _whatsapp_on()
    return _save_whatsapp(None)


@bp.get("/templates/whatsapp/<id:template_id>")
@templates_right
def edit_whatsapp_template(template_id: int) -> str:
    template = _whatsapp(template_id)
    return _whatsapp_editor(WhatsappTemplateForm(formdata=None, obj=template), template)


@bp.post("/templates/whatsapp/<id:template_id>")
@templates_right
def update_whatsapp_template(template_id: int) -> Response:
    return _save_whatsapp(_whatsapp(template_id))


def _save_whatsapp(template: WhatsappTemplate | None) -> Response:
    form = WhatsappTemplateForm()
    saved = refusals.submit(
        form,
        lambda: templates.save_whatsapp(
            db.session, current_user.organization, _whatsapp_draft(form, template), template
        ),
        lambda: _whatsapp_editor(form, template),
    )
    return _to_templates(
        f"Approved WhatsApp template {saved.name} ({saved.locale}) saved.", f"#wa-template-{saved.id}"
    )


def _whatsapp_draft(form: WhatsappTemplateForm, template: WhatsappTemplate | None) -> templates.WhatsappDraft:
    return templates.WhatsappDraft(
        form.name.data or "",
        form.locale.data or "",
        form.body.data or "",
        form.parameters.data or "",
        form.approved.data,
        form.audience.data or (template.audience if template else "both"),
    )


@bp.post("/templates/whatsapp/<id:template_id>/delete")
@templates_right
def delete_whatsapp_template(template_id: int) -> Response:
    template = _whatsapp(template_id)
    if not SubmitForm().validate():
        abort(400)
    label = f"{template.name} ({template.locale})"
    deleted = templates.remove_whatsapp(db.session, template)
    db.session.commit()
    kept = "was used in messages, so it is kept but withdrawn: it can no longer be sent"
    return _to_templates(f"{label} {'deleted' if deleted else kept}.")
