-- A finished job's ledger hash, rewritten with only what its retention needs (broker/store/retained.py):
-- the fields of RETAINED_NAMES that hold a value other than their default (DEFAULTS), each under its
-- short name, the times in whole seconds, and a field left out when the one it is derived from
-- (DERIVED) is kept. A first launch's pod name, which ends in "-" and 16 characters of the job id, is
-- kept without those 16 (a pod name never ends in "-", so the reader knows to add them back). The
-- hash is deleted and written anew, because a hash once grown past Redis's small encoding (the job
-- record alone is far over 64 bytes) keeps the large one when fields are only deleted; its expiry
-- (`retention` seconds, 0: none) is set again.
local function compact_ledger(job, retention)
  local names = $(retained_names)
  local whole = $(whole_seconds)
  local defaults = $(retained_defaults)
  local derived = $(retained_derived)
  local order, asked = {}, {}
  for name, _ in pairs(names) do
    order[#order + 1] = name
  end
  table.sort(order)
  for i, name in ipairs(order) do
    asked[i] = name
  end
  asked[#asked + 1] = 'job_id'
  local values = redis.call('HMGET', job, unpack(asked))
  local suffix = '-' .. string.sub(values[#asked] or '', 1, 16)
  local found = {}
  for i, name in ipairs(order) do
    local value = values[i]
    if value and value ~= '' and value ~= defaults[name] then
      found[name] = value
    end
  end
  local kept = {}
  for _, name in ipairs(order) do
    local value = found[name]
    if value and not (derived[name] and found[derived[name]]) then
      if whole[name] and tonumber(value) then
        value = string.format('%d', math.floor(tonumber(value)))
      elseif name == 'pod_name' and #suffix == 17 and string.sub(value, -17) == suffix then
        value = string.sub(value, 1, -17)
      end
      kept[#kept + 1] = names[name]
      kept[#kept + 1] = value
    end
  end
  redis.call('DEL', job)
  if #kept > 0 then
    redis.call('HSET', job, unpack(kept))
    if retention > 0 then
      redis.call('EXPIRE', job, retention)
    end
  end
end
