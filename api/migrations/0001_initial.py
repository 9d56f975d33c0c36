# IdempotencyRecord moves here from the integrations app; only Django's state changes (the table
# keeps its name and rows).

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('integrations', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('caller', models.CharField(help_text='key:<id> or user:<id>', max_length=64)),
                        ('key', models.CharField(max_length=255)),
                        ('fingerprint', models.CharField(max_length=64)),
                        ('status_code', models.PositiveIntegerField(blank=True, null=True)),
                        ('response_body', models.JSONField(blank=True, null=True)),
                        ('response_headers', models.JSONField(default=dict)),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'integrations_idempotencyrecord',
                        'constraints': [models.UniqueConstraint(fields=('caller', 'key'), name='idempotency_unique_caller_key')],
                    },
                ),
            ],
        ),
    ]
