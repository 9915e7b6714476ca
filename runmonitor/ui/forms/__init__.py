"""Forms generated from pydantic models: the package a dialog imports them from.

The services declare their connection and create-request fields once, as pydantic models
(titles, descriptions, defaults, constraints). :class:`ModelForm` builds a form from such a
model, reads it back as JSON-compatible values, and validates with the model itself, showing
each message beside the field it concerns.

Widget per field type:

===============================  =====================================================
``str``                          QLineEdit (hard length limit for short fields; long text
                                 is never cut: the model reports what is too long)
``SecretStr``                    QLineEdit in password mode with a "Show" toggle
``bool``                         QCheckBox
``int`` / ``float``              QSpinBox / QDoubleSpinBox within ge/le/gt/lt; a QLineEdit
                                 when unbounded or optional (empty = not set)
``Enum`` / ``Literal``           QComboBox (item text = value)
``datetime`` / ``date``/``time`` QDateTimeEdit (UTC, calendar) / QDateEdit / QTimeEdit, with
                                 a "Not set" box when the field may be empty
``UUID``                         QLineEdit with an example; "Generate" when optional
``dict[str, str]``               key/value QTableWidget with Add / Remove
``list[str]``                    QListWidget with editable items, Add / Remove
``list[Model]``                  one framed nested form per item, Remove on each, Add
``Model``                        QGroupBox with a nested form (checkable when optional)
anything else                    QLineEdit holding JSON
===============================  =====================================================

Inside: :mod:`.spec` reads the model's fields (no Qt), :mod:`.editors` has the widget of each
kind of field, :mod:`.model_form` the form itself, :mod:`.feedback` the help, error and
check-outcome lines. The shared text tones are in :mod:`runmonitor.ui.theme`, the drawn
feedback icons in :mod:`runmonitor.ui.icons`.
"""

from __future__ import annotations

from runmonitor.ui.forms.feedback import CheckOutcome, FieldError, HelpLabel
from runmonitor.ui.forms.model_form import ModelForm, ModelListEditor
from runmonitor.ui.forms.spec import MISSING, FieldSpec, errors_by_path
from runmonitor.ui.icons import feedback_icon
from runmonitor.ui.theme import tone

# feedback_icon and tone live in ui/icons.py and ui/theme.py; the dialogs still import them from here.
__all__ = [
    "MISSING",
    "CheckOutcome",
    "FieldError",
    "FieldSpec",
    "HelpLabel",
    "ModelForm",
    "ModelListEditor",
    "errors_by_path",
    "feedback_icon",
    "tone",
]
