"""What the REST API keeps of its own: the first response to each idempotent POST. GLOBAL (the
directory database): callers are looked up before any team's shard is known."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pokerproject.regions.placement import GlobalModel


class IdempotencyRecord(GlobalModel):
    """The first response to a POST carrying an ``Idempotency-Key``, per caller, replayed for
    repeats with the same body. ``status_code`` is null while the first request is running;
    ``locked_until`` ends its lease: a request still in progress after it (its process died)
    may be taken over by a retry."""

    caller = models.CharField(
        max_length=64, help_text=_("key:<id> or user:<id>"), verbose_name=_("caller")
    )
    key = models.CharField(max_length=255, verbose_name=_("key"))
    fingerprint = models.CharField(max_length=64, verbose_name=_("fingerprint"))
    status_code = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("status code"))
    response_body = models.JSONField(null=True, blank=True, verbose_name=_("response body"))
    response_headers = models.JSONField(default=dict, verbose_name=_("response headers"))
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("created at")
    )
    locked_until = models.DateTimeField(null=True, blank=True, verbose_name=_("locked until"))

    class Meta:
        # The table keeps the name it had when the integrations app held the model.
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        db_table = "integrations_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotency_unique_caller_key")
        ]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"
