# One write request with two segments, answered; notifications on both sides.
ring blkif
f.free
f.req operation=1 nr_segments=2 handle=51712 id=7 sector_number=2048 seg0.gref=8 seg0.first_sect=0 seg0.last_sect=7 seg1.gref=9 seg1.first_sect=0 seg1.last_sect=3
f.push_notify          # req_event starts at 1: back must be kicked
b.has_req
b.get_req
b.final_check          # nothing left: arms req_event = req_cons + 1
b.rsp id=7 operation=1 status=0
b.push_notify          # rsp_event starts at 1: front must be kicked
f.has_rsp
f.get_rsp
f.final_check          # arms rsp_event
hexdump 0 256
