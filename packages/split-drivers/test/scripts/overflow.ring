# A hostile front end: req_prod far ahead; a hostile back end: rsp_prod far ahead.
ring blkif
s.set req_prod 33
b.prod_overflow
b.has_req
s.set req_prod 32
b.prod_overflow
b.has_req
b.final_check
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.get_req
b.has_req
b.get_req
b.has_req
b.rsp id=1
b.has_req
s.set req_prod 0xffffffff
b.prod_overflow
b.has_req
b.final_check
s.set rsp_prod 40
f.has_rsp
f.get_rsp
f.final_check
s.set rsp_prod 1
f.get_rsp
f.free
f.req indirect operation=6 indirect_op=1 nr_segments=0xffff id=3 handle=2 indirect_grefs0=9 indirect_grefs7=10
b.get_req discard
b.get_req indirect
ring netif_tx start=100
s.set req_prod 99
b.prod_overflow
b.has_req
s.set req_prod 357
b.prod_overflow
b.has_req
s.set rsp_prod 400
f.has_rsp
f.get_rsp
f.free
f.req
f.req
f.free
