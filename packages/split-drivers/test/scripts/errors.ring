# Every error message; a failed command changes nothing.
f.free
hexdump
state
bogus
cons.bogus
ring
ring disk
ring blkif order=5
ring blkif order=-1
ring blkif start=zz
ring blkif order=2 extra
ring blkif
f.req operation
f.req nosuch=1
f.req operation=08
f.req operation=0x
f.req operation=1 id=99999999999999999999
f.req operation=1 id=-9223372036854775809
f.req operation=1 id=-9223372036854775808
f.req extra type=1
f.req discard operation=5 nr_sectors=0x10 flag=1
f.req indirect operation=6 nr_segments=300 indirect_grefs7=42 indirect_grefs8=1
f.req =5
f.req operation=+7 handle=0XABCD
s.set req_prod
s.set foo 1
s.set req_prod 1x
s.set req_prod 2 3
f.push extra
f.free now
b.get_req bogus
b.get_req discard extra
f.get_rsp extra
b.rsp extra id=1
b.rsp status=-32769
hexdump 0 16 32
hexdump 5000
hexdump 64 0
hexdump -1
hexdump 0x40 0x50
b.get_req
b.get_req
b.get_req
cons.set bogus 1
cons.set in_prod
cons.set in_prod z
cons.write_out
cons.write_out a b
cons.read_out 1 2
cons.read_out q
cons.init now
state extra
f.req discard
f.req	operation=3		id=4   # tabs
