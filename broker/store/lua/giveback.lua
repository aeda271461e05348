-- Return to the Celery queue the deliveries a live worker dropped without running them.
-- KEYS[1] kombu's unacked hash; KEYS[2] kombu's unacked index; KEYS[3] the Celery queue list
-- ARGV[1] the queue's routing key; ARGV[2..] the delivery tags
-- On a broker connection loss Celery forgets the messages it had reserved but not started (they
-- cannot be acknowledged on the new connection); kombu would give them back only after the
-- visibility timeout. The worker names them once it is connected again, and each goes back in
-- one atomic step (lib/requeue.lua), so kombu's sweep and podq's never both restore it. A tag
-- whose delivery did not survive the failover is skipped (intake's orphan sweep finds its job).
-- Returns the number given back.
$(include:requeue)
local given = 0
for i = 2, #ARGV do
  given = given + requeue(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[i])
end
return given
