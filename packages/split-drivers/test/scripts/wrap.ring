# Free-running indices across 2^32: start=0xfffffff0 on every ring type.
ring blkif start=0xfffffff0
f.free
f.req operation=0 nr_segments=1 id=0xffffffffffffffff sector_number=-1 seg0.gref=0x1ffffffff seg0.first_sect=256 seg0.last_sect=-1
f.req operation=1 nr_segments=12 handle=0x10000 id=1 seg10.gref=5 seg10.last_sect=7
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.req
f.push_notify
b.has_req
b.prod_overflow
b.get_req
b.get_req
b.get_req
b.rsp id=-1 operation=0 status=-1
b.rsp id=1 operation=1 status=65535
b.rsp id=2 status=32768
b.push_notify
f.has_rsp
f.get_rsp
f.get_rsp
f.get_rsp
f.final_check
state
hexdump 0 512
ring netif_tx start=4294967290
f.req gref=1 offset=2 flags=0xc id=3 size=1514
f.req extra type=1 flags=1 gso.size=1448 gso.type=1 gso.pad=9 gso.features=0x1ffff
f.req gref=2 size=100
f.req gref=3 size=100
f.req gref=4 size=100
f.req gref=5 size=100
f.req gref=6 size=100
f.req gref=7 size=100
f.push
b.final_check
b.get_req
b.get_req extra
b.get_req
b.rsp id=3 status=0
b.rsp id=3 status=1
b.rsp id=4 status=-2
b.push
f.get_rsp
f.get_rsp
f.get_rsp
f.final_check
hexdump
ring netif_rx start=-5
f.req id=1 gref=100
f.req id=2 pad=7 gref=101
f.push_notify
b.get_req
b.get_req
b.rsp id=1 offset=10 flags=8 status=60
b.rsp extra type=1 flags=0 gso.size=1448 gso.type=2
b.push_notify
f.get_rsp
f.get_rsp extra
f.free
hexdump
