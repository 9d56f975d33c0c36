"""Admin support for regional models: every page reads and writes one chosen shard."""

from urllib.parse import parse_qs

from django.contrib import admin
from django.http import HttpRequest
from django.utils.http import urlencode

from pokerproject.regions import registry


class ShardFilter(admin.SimpleListFilter):
    title = "shard"
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


class ShardAdmin(admin.ModelAdmin):
    """A ModelAdmin over one shard at a time, chosen with the "shard" filter (default: first)."""

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

    def save_model(self, request, obj, form, change):
        obj.save(using=self.shard(request))

    def delete_model(self, request, obj):
        obj.delete(using=self.shard(request))

    def delete_queryset(self, request, queryset):
        queryset.delete()

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


class ReadOnlyShardAdmin(ShardAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
