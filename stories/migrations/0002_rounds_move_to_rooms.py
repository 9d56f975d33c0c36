# Round and Vote now belong to the rooms app (rooms/migrations/0003); their tables stay.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('stories', '0001_initial'),
        ('rooms', '0003_rounds_votes_and_copies'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='Vote'),
                migrations.DeleteModel(name='Round'),
            ],
        ),
    ]
