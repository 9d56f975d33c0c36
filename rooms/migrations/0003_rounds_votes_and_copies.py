# Rounds, votes and the copies of finished rounds move here from the backlog and the replication
# apps. Only Django's state changes: the tables keep their names (each model's db_table) and
# their rows, on every shard.

import django.db.models.deletion
import django.utils.timezone
import pokerproject.regions.ids
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rooms', '0002_presence_worker'),
        ('stories', '0001_initial'),
        ('replication', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Round',
                    fields=[
                        ('id', models.UUIDField(default=pokerproject.regions.ids.uuid7, editable=False, primary_key=True, serialize=False)),
                        ('team_id', models.BigIntegerField(db_index=True)),
                        ('title', models.CharField(blank=True, help_text="The story's title, or a label.", max_length=200)),
                        ('deck', models.CharField(default='fibonacci', max_length=32)),
                        ('cards', models.JSONField(default=list, help_text="The deck's cards when the round started.")),
                        ('status', models.CharField(choices=[('voting', 'Voting'), ('revealed', 'Revealed'), ('accepted', 'Accepted'), ('cancelled', 'Cancelled')], default='voting', max_length=16)),
                        ('stats', models.JSONField(blank=True, null=True)),
                        ('estimate', models.CharField(blank=True, max_length=16)),
                        ('version', models.PositiveIntegerField(default=1, help_text='Bumped on every change; replication keeps the highest.')),
                        ('started_by_id', models.BigIntegerField(blank=True, null=True)),
                        ('started_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('revealed_at', models.DateTimeField(blank=True, null=True)),
                        ('accepted_at', models.DateTimeField(blank=True, null=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('story', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='rounds', to='stories.story')),
                    ],
                    options={
                        'db_table': 'stories_round',
                        'ordering': ['-started_at', '-id'],
                        'indexes': [models.Index(fields=['team_id', 'status'], name='round_team_status')],
                    },
                ),
                migrations.CreateModel(
                    name='Vote',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('team_id', models.BigIntegerField(db_index=True)),
                        ('user_id', models.BigIntegerField()),
                        ('value', models.CharField(max_length=16)),
                        ('cast_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('round', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='votes', to='rooms.round')),
                    ],
                    options={
                        'db_table': 'stories_vote',
                        'ordering': ['round', 'cast_at'],
                        'constraints': [models.UniqueConstraint(fields=('round', 'user_id'), name='vote_unique_round_user')],
                    },
                ),
                migrations.CreateModel(
                    name='RoundReplica',
                    fields=[
                        ('id', models.UUIDField(primary_key=True, serialize=False)),
                        ('team_id', models.BigIntegerField(db_index=True)),
                        ('home_region', models.CharField(max_length=32)),
                        ('version', models.PositiveIntegerField()),
                        ('origin_updated_at', models.DateTimeField()),
                        ('story_id', models.UUIDField(blank=True, null=True)),
                        ('story_title', models.CharField(blank=True, max_length=200)),
                        ('story_external_key', models.CharField(blank=True, max_length=64)),
                        ('title', models.CharField(blank=True, max_length=200)),
                        ('deck', models.CharField(max_length=32)),
                        ('status', models.CharField(max_length=16)),
                        ('stats', models.JSONField(blank=True, null=True)),
                        ('estimate', models.CharField(blank=True, max_length=16)),
                        ('votes', models.JSONField(default=list, help_text='[{user_id, value}] sorted by user id.')),
                        ('started_at', models.DateTimeField()),
                        ('revealed_at', models.DateTimeField(blank=True, null=True)),
                        ('accepted_at', models.DateTimeField(blank=True, null=True)),
                        ('applied_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('lag_seconds', models.FloatField(default=0, help_text='Commit at home → applied here.')),
                    ],
                    options={
                        'db_table': 'replication_roundreplica',
                        'ordering': ['-revealed_at'],
                        'indexes': [models.Index(fields=['team_id', 'story_id'], name='replica_team_story')],
                    },
                ),
                migrations.AlterField(
                    model_name='room',
                    name='current_round',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='rooms.round'),
                ),
            ],
        ),
    ]
