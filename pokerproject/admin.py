"""Admin pages that write through services.

Each model is written only by the services of the app that defines it, and its admin calls them
(``save_model``, ``save_formset``, ``delete_model``, ``delete_queryset``). A page's writes share
one transaction: when a service refuses (a ``DomainError``), everything the page wrote rolls
back and the admin shows the refusal as an error message on the page it came from.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.db import router, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from pokerproject.errors import DomainError

_READS = ("GET", "HEAD", "OPTIONS", "TRACE")


class ServiceAdmin(admin.ModelAdmin):
    """A ModelAdmin whose subclasses write through services (see the module's docstring)."""

    def write_database(self, request: HttpRequest) -> str:
        """The database whose transaction holds a page's writes."""
        return router.db_for_write(self.model)

    def refused(self, request: HttpRequest, error: DomainError) -> HttpResponse:
        """Show a service's refusal and go back to the page (its writes have rolled back)."""
        self.message_user(request, error.message, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    # Django's views, with the transaction on write_database() and refusals shown.

    @csrf_protect_m
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method in _READS:
            return self._changeform_view(request, object_id, form_url, extra_context)
        try:
            with transaction.atomic(using=self.write_database(request)):
                return self._changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            return self.refused(request, error)

    @csrf_protect_m
    def delete_view(self, request, object_id, extra_context=None):
        if request.method in _READS:
            return self._delete_view(request, object_id, extra_context)
        try:
            with transaction.atomic(using=self.write_database(request)):
                return self._delete_view(request, object_id, extra_context)
        except DomainError as error:
            return self.refused(request, error)

    def changelist_view(self, request, extra_context=None):
        # Actions (the bulk "delete selected" among them) run here, on a POST.
        if request.method in _READS:
            return super().changelist_view(request, extra_context)
        try:
            with transaction.atomic(using=self.write_database(request)):
                return super().changelist_view(request, extra_context)
        except DomainError as error:
            return self.refused(request, error)


class ReadOnlyAdmin(ServiceAdmin):
    """Records the admin shows and never writes: no add, change or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
