-- A result record (msgpack bytes) with its top-level `scheduler_id` string replaced by
-- `owner`; every other byte is kept as it was (no decode and re-encode, which would turn
-- an empty map into an array). Returns the record unchanged if it is not a map with a
-- string `scheduler_id` (podq writes no such result).
local FIXED_SIZES = {[0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8, [0xd0] = 1, [0xd1] = 2, [0xd2] = 4,
                     [0xd3] = 8, [0xca] = 4, [0xcb] = 8, [0xd4] = 2, [0xd5] = 3, [0xd6] = 5, [0xd7] = 9,
                     [0xd8] = 17}
local LENGTH_SIZES = {[0xd9] = 1, [0xda] = 2, [0xdb] = 4, [0xc4] = 1, [0xc5] = 2, [0xc6] = 4}
local EXT_LENGTH_SIZES = {[0xc7] = 1, [0xc8] = 2, [0xc9] = 4}

-- The position just after the msgpack item that starts at `pos` (1-based), or nil.
local function msgpack_item_end(s, pos)
  local b = s:byte(pos)
  if not b then return nil end
  local function uint(at, size)
    local value = 0
    for i = 0, size - 1 do value = value * 256 + (s:byte(at + i) or 0) end
    return value
  end
  local function items_end(at, count)
    for _ = 1, count do
      at = msgpack_item_end(s, at)
      if not at then return nil end
    end
    return at
  end
  if b <= 0x7f or b >= 0xe0 or b == 0xc0 or b == 0xc2 or b == 0xc3 then return pos + 1 end
  if b >= 0xa0 and b <= 0xbf then return pos + 1 + b - 0xa0 end
  if b >= 0x80 and b <= 0x8f then return items_end(pos + 1, 2 * (b - 0x80)) end
  if b >= 0x90 and b <= 0x9f then return items_end(pos + 1, b - 0x90) end
  if FIXED_SIZES[b] then return pos + 1 + FIXED_SIZES[b] end
  local size = LENGTH_SIZES[b]
  if size then return pos + 1 + size + uint(pos + 1, size) end
  size = EXT_LENGTH_SIZES[b]
  if size then return pos + 2 + size + uint(pos + 1, size) end
  if b == 0xdc or b == 0xdd then
    size = b == 0xdc and 2 or 4
    return items_end(pos + 1 + size, uint(pos + 1, size))
  end
  if b == 0xde or b == 0xdf then
    size = b == 0xde and 2 or 4
    return items_end(pos + 1 + size, 2 * uint(pos + 1, size))
  end
  return nil
end

local function with_owner(record, owner)
  local b = record:byte(1)
  local pos, count
  if b and b >= 0x80 and b <= 0x8f then
    pos, count = 2, b - 0x80
  elseif b == 0xde then
    pos, count = 4, record:byte(2) * 256 + record:byte(3)
  else
    return record
  end
  local key = cmsgpack.pack('scheduler_id')
  for _ = 1, count do
    local value = msgpack_item_end(record, pos)
    if not value then return record end
    local value_end = msgpack_item_end(record, value)
    if not value_end then return record end
    local first = record:byte(value)
    local is_string = first and ((first >= 0xa0 and first <= 0xbf) or first == 0xd9 or first == 0xda or first == 0xdb)
    if record:sub(pos, value - 1) == key and is_string then
      return record:sub(1, value - 1) .. cmsgpack.pack(owner) .. record:sub(value_end)
    end
    pos = value_end
  end
  return record
end
