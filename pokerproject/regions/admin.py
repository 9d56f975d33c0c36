"""Admin support for regional models: every page reads one chosen shard; writes go through the
owning app's services (pokerproject.admin), in a transaction on that shard."""

from urllib.parse import parse_qs

from django.contrib import admin
from django.contrib.admin.utils import NestedObjects
from django.http import HttpRequest
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy

from pokerproject.admin import ReadOnlyAdmin, ServiceAdmin
from pokerproject.regions import registry


class ShardFilter(admin.SimpleListFilter):
    title = gettext_lazy("shard")
    parameter_name = "shard"

    def lookups(self, request, model_admin):
        return [(s.alias, f"{s.alias} ({s.region})") for s in registry.shards()]

    def choices(self, changelist):
        current = self.value() or registry.shard_aliases()[0]
        for alias, label in self.lookup_choices:
            yield {
                "selected": alias == current,
                "query_string": changelist.get_query_string({self.parameter_name: alias}),
                "display": label,
            }

    def queryset(self, request, queryset):
        return queryset  # the shard is applied in ShardAdmin.get_queryset


class ShardAdmin(ServiceAdmin):
    """A ModelAdmin over one shard at a time, chosen with the "shard" filter (default: first).

    It writes nothing itself: a subclass that lets the admin add, change or delete rows
    implements save_model, delete_model and delete_queryset with its app's services.
    """

    def shard(self, request: HttpRequest) -> str:
        aliases = registry.shard_aliases()
        alias = request.GET.get("shard")
        if alias is None and "_changelist_filters" in request.GET:
            alias = parse_qs(request.GET["_changelist_filters"]).get("shard", [None])[0]
        return alias if alias in aliases else aliases[0]

    def get_list_filter(self, request):
        return [ShardFilter, *super().get_list_filter(request)]

    def get_queryset(self, request):
        return super().get_queryset(request).using(self.shard(request))

    def write_database(self, request: HttpRequest) -> str:
        return self.shard(request)

    def save_model(self, request, obj, form, change):
        raise NotImplementedError(f"{type(self).__name__}: save through the app's services")

    def delete_model(self, request, obj):
        raise NotImplementedError(f"{type(self).__name__}: delete through the app's services")

    def delete_queryset(self, request, queryset):
        raise NotImplementedError(f"{type(self).__name__}: delete through the app's services")

    def get_deleted_objects(self, objs, request):
        # Django's summary asks the router for the model's database, which a regional model has
        # only per shard: collect on the chosen one (rows listed without links).
        objs = list(objs)
        collector = NestedObjects(using=self.shard(request), origin=objs)
        collector.collect(objs)

        def label(obj) -> str:
            return f"{capfirst(obj._meta.verbose_name)}: {obj}"

        model_count = {
            model._meta.verbose_name_plural: len(rows)
            for model, rows in collector.model_objs.items()
        }
        return collector.nested(label), model_count, set(), [label(o) for o in collector.protected]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(
            db_field, request, using=self.shard(request), **kwargs
        )

    def get_preserved_filters(self, request):
        # Keep the chosen shard on the change and delete pages, and back on the list.
        preserved = super().get_preserved_filters(request)
        if preserved or "shard" not in request.GET:
            return preserved
        return urlencode({"_changelist_filters": urlencode({"shard": request.GET["shard"]})})


class ReadOnlyShardAdmin(ReadOnlyAdmin, ShardAdmin):
    """Records of a shard the admin shows and never writes: no add, change or delete."""
