# RoundReplica now belongs to the rooms app (rooms/migrations/0003); its table stays.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('replication', '0001_initial'),
        ('rooms', '0003_rounds_votes_and_copies'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='RoundReplica')],
        ),
    ]
