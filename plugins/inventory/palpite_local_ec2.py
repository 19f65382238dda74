"""The local environment's inventory: amazon.aws.aws_ec2 against the moto server, and an
empty inventory (with one clear warning) while that server is not running.

Before `site.yml` has started the local cloud, aws_ec2 would send its first request to
whatever answers at the moto address. Where a network gateway answers anything (as on
this project's machines), botocore cannot parse the reply, aws_ec2 fails, and
ansible-playbook's Python (3.12.1) then crashed with a segfault in its final garbage
collection, after a successful run. Checking that moto answers first avoids that path.
"""

import urllib.error
import urllib.request

from ansible.plugins.inventory import BaseInventoryPlugin
from ansible_collections.amazon.aws.plugins.inventory.aws_ec2 import (
    DOCUMENTATION as AWS_EC2_DOCUMENTATION,
)
from ansible_collections.amazon.aws.plugins.inventory.aws_ec2 import (
    InventoryModule as AwsEc2InventoryModule,
)

DOCUMENTATION = AWS_EC2_DOCUMENTATION.replace(
    "name: aws_ec2\n", "name: palpite_local_ec2\n", 1
).replace(
    "short_description: EC2 inventory source",
    "short_description: EC2 inventory of the local cloud (moto); empty while it is down",
    1,
)
PROBE_TIMEOUT_SECONDS = 2.0


def moto_answers(endpoint_url: str) -> bool:
    """True if a moto server answers at the endpoint (its dashboard, /moto-api/)."""
    try:
        with urllib.request.urlopen(
            f"{endpoint_url.rstrip('/')}/moto-api/", timeout=PROBE_TIMEOUT_SECONDS
        ) as response:
            return response.status == 200 and b"moto" in response.read(65536).lower()
    except (OSError, ValueError, urllib.error.URLError):
        return False


class InventoryModule(AwsEc2InventoryModule):
    NAME = "palpite_local_ec2"

    def verify_file(self, path: str) -> bool:
        return BaseInventoryPlugin.verify_file(self, path) and path.endswith(
            ("local_ec2.yml", "local_ec2.yaml")
        )

    def parse(self, inventory, loader, path, cache=True):
        BaseInventoryPlugin.parse(self, inventory, loader, path)
        self._read_config_data(path)
        endpoint = self.get_option("endpoint_url")
        if not moto_answers(endpoint):
            self.display.warning(
                f"the local cloud does not answer at {endpoint} yet: no instances"
                " (site.yml and playbooks/provision.yml start it)"
            )
            return
        super().parse(inventory, loader, path, cache=cache)
