"""podq.broker.control: control operations (revoke, mark done, delete, adopt, complete)."""
