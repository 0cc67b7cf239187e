/*
 * Face-to-face payment between two secure elements, with power cuts, a lossy
 * link and the terminals' recovery racing everything (docs/se-apdu.md
 * "Face-to-face payment", DESIGN.md §6.5 and §7). One payment of AMT from the
 * payer SE A to the payee SE B; models/README.md says what each part mirrors.
 *
 *   spin -a f2f.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan -m100000
 *
 * Variants (spin -DNAME -a f2f.pml), each of which must fail:
 *   BROKEN_CREDIT_BEFORE_PERSIST  the payee's host lets the ack leave before it
 *                                 saved the credit
 *   BROKEN_REFUSE_AFTER_CREDIT    F2F REFUSE signs a refusal for a payment it credited
 *   BROKEN_SEND_BEFORE_PERSIST    F2F SEND lets the payment leave before the debit is saved
 *   ACK_FOR_REFUSED               the applet before its fix: F2F REFUSE and a
 *                                 late "pay" answered an ack for any id in
 *                                 received_notes, which also held refused ids
 *   CLOSE_ON_RECORD               F2F CLOSE's old record form: the registry's
 *                                 record of the payee's claim closed the
 *                                 payment at the payer as delivered
 */

#ifndef CRASHES
#define CRASHES 3          /* power cuts per SE */
#endif
#define A0     2           /* the payer's balance before */
#define AMT    1           /* the payment */
#define TOTAL  A0          /* all the value there is */

mtype = { HELLO, ACCEPT, PAY, ACK, REFUSED, ERR };

/* The short-range link: payer -> link -> payee, and the answers back. */
chan a2l = [1] of { mtype };
chan l2b = [1] of { mtype };
chan b2l = [1] of { mtype };
chan l2a = [1] of { mtype };

/* ---- Payer SE A. a_* is the applet's state in memory (st_), pa_* what its
 * host last saved (state.seal, Device::save). */
byte a_bal = A0;   byte pa_bal = A0;
bool a_und;        bool pa_und;        /* f2f_undelivered holds the payment */
byte a_debits;     byte pa_debits;     /* ghost: times F2F SEND debited it */
byte a_refunds;    byte pa_refunds;    /* ghost: times a refusal credited it back */
bool a_rec;        bool pa_rec;        /* ghost: closed on the registry's record (CLOSE_ON_RECORD) */
bool a_lock;                           /* Device::mu_, held for a whole command */
byte a_crashes;

/* ---- Payee SE B. */
byte b_bal;        byte pb_bal;
byte b_credits;    byte pb_credits;    /* times it was credited (peer_pay, receive_note) */
bool b_ref;        bool pb_ref;        /* f2f_refused: it signed a refusal */
bool b_unrec;      bool pb_unrec;      /* f2f_unreconciled holds it */
bool b_sess;                           /* f2f_in_: a session from hello, never saved */
bool b_lock;
byte b_crashes;

#define b_cred      (b_credits > 0)
#define pb_cred     (pb_credits > 0)
/* received_notes: the applet inserts the id when it credits and when it refuses. */
#define b_received  (b_cred || b_ref)

/* ---- Documents out in the world. Once one exists a terminal may hand it on
 * any number of times, or lose it (never use it). */
bool doc_out;      /* the signed f2f.payment, from `zf wallet undelivered --out` */
bool ack_out;      /* a signed f2f.ack a terminal holds (F2F REFUSE, RECEIVE NOTE) */
bool ref_out;      /* a signed f2f.refusal a terminal holds */
bool claim_out;    /* the payee's signed registry claim (CLAIM NOTE, F2F RECONCILE) */
bool r_claimed;    /* the registry's record: the payee's claim won (first claim wins) */

inline persist_a() {
  pa_bal = a_bal; pa_und = a_und; pa_debits = a_debits; pa_refunds = a_refunds; pa_rec = a_rec
}
inline restore_a() {
  a_bal = pa_bal; a_und = pa_und; a_debits = pa_debits; a_refunds = pa_refunds; a_rec = pa_rec
}
inline persist_b() {
  pb_bal = b_bal; pb_credits = b_credits; pb_ref = b_ref; pb_unrec = b_unrec
}
inline restore_b() {
  b_bal = pb_bal; b_credits = pb_credits; b_ref = pb_ref; b_unrec = pb_unrec
}

/* Payer, apply_f2f_answer (from f2f_send, or F2F CLOSE with an answer). */
inline apply_answer(ans) {
  if
  :: ans == ACK     -> a_und = false; printf("@ A: takes the ack: delivered\n")
  :: ans == REFUSED -> a_bal = a_bal + AMT; a_und = false; a_refunds++;
                       printf("@ A: takes the refusal: the value is back\n")
  :: else           -> skip          /* an error: it stays undelivered */
  fi
}

/* Payer, F2F CLOSE {id, answer} (`zf wallet answer`): the same, as one command, saved. */
inline close_with_ack() {
  a_und = false; persist_a(); printf("@ A: takes the ack: delivered\n")
}
inline close_with_refusal() {
  a_bal = a_bal + AMT; a_und = false; a_refunds++; persist_a();
  printf("@ A: takes the refusal: the value is back\n")
}

/* Payee, peer_pay: the "pay" message over the session; volatile changes only,
 * the host saves them in settle_command before the answer leaves. */
inline peer_pay(ans) {
  if
  :: !b_sess -> ans = ERR; printf("@ B: pay without a session: error\n")  /* wrong_state */
  :: else ->
     b_sess = false;                         /* one payment per session */
     if
#ifdef ACK_FOR_REFUSED
     :: b_received -> ans = ACK; printf("@ B: pay: id in received_notes: signs the ack again\n")
#else
     :: b_ref -> ans = REFUSED; printf("@ B: pay: refused before: the refusal again\n")
     :: b_cred -> ans = ACK; printf("@ B: pay: credited before: the ack again\n")
#endif
     :: else ->
        if
        :: b_ref = true; ans = REFUSED;      /* over its limits (f2f_can_take, fits_total) */
           printf("@ B: pay: over its limits: marks it refused, signs a refusal\n")
        :: b_credits++; b_bal = b_bal + AMT; b_unrec = true; ans = ACK;
           printf("@ B: pay: credits it (unreconciled), signs the ack\n")
        fi
     fi
  fi
}

/* Payee, F2F REFUSE (`zf wallet refuse FILE`): one command, saved before its
 * answer leaves. */
inline f2f_refuse(ans) {
  if
#if defined(ACK_FOR_REFUSED)
  :: b_received -> ans = ACK;                /* received_notes.contains(id) */
     printf("@ B: F2F REFUSE: id in received_notes: answers the ack\n")
#elif defined(BROKEN_REFUSE_AFTER_CREDIT)
  :: b_ref -> ans = REFUSED; printf("@ B: F2F REFUSE: refused before: the refusal again\n")
#else
  :: b_cred -> ans = ACK;                    /* it credited: the ack again, never a refusal */
     printf("@ B: F2F REFUSE: it credited it: answers the ack\n")
  :: b_ref -> ans = REFUSED;                 /* it refused: the same refusal again */
     printf("@ B: F2F REFUSE: refused before: the refusal again\n")
#endif
  :: else -> b_ref = true; persist_b(); ans = REFUSED;
     printf("@ B: F2F REFUSE: marks it refused, saved, signs a refusal\n")
  fi;
  if
  :: ans == ACK -> ack_out = true
  :: else -> ref_out = true
  fi
}

/* Payee, RECEIVE NOTE of the f2f.payment with the registry's record of its own
 * won claim (check_incoming_note, check_won_record, receive_note): credits,
 * saved, and its answer carries the ack. */
inline receive_note() {
  b_credits++; b_bal = b_bal + AMT; persist_b(); ack_out = true;
  printf("@ B: RECEIVE NOTE with the registry's record: credits it, saved, answers the ack\n")
}

/* ---- The payer SE running F2F PAY then F2F SEND (f2f_pay, f2f_send), until
 * its first power cut; a payer SE that lost power has lost the session too. */
active proctype Payer() {
  mtype ans;
  {
    /* F2F PAY: hello, accept, codes compared. Nothing is debited yet. */
    a2l!HELLO;
    if
    :: l2a?ACCEPT
    :: true -> printf("@ A: no accept: nothing debited\n"); goto done  /* the link dropped */
    fi;
    /* F2F SEND under the device lock: debit and keep it undelivered, one state update. */
    atomic { !a_lock -> a_lock = true; a_bal = a_bal - AMT; a_und = true; a_debits++;
             printf("@ A: F2F SEND: debits it, keeps it undelivered\n") };
#ifndef BROKEN_SEND_BEFORE_PERSIST
    atomic { persist_a(); printf("@ A: saved\n") };  /* peer_link_->persist(), then the payment leaves */
    atomic { a2l!PAY; printf("@ A: pay sent\n") };
#else
    atomic { a2l!PAY; printf("@ A: pay sent\n") };
    atomic { persist_a(); printf("@ A: saved\n") };
#endif
    if
    :: l2a?ans -> atomic { apply_answer(ans) }
    :: true -> printf("@ A: no answer in time: undelivered\n")
    fi;
    atomic { persist_a(); a_lock = false; printf("@ A: saved, F2F SEND ends\n") };  /* settle_command */
done:
    skip
  } unless { a_crashes > 0 }
}

/* ---- The payee SE's short-range port (Device::handle_peer, process_peer). */
active proctype Payee() {
  mtype m, ans;
  byte seen;
end_serve:
  do
  :: atomic { l2b?m -> b_lock = true; seen = b_crashes };
     {
       if
       :: m == HELLO -> b_sess = true; ans = ACCEPT;    /* peer_hello: volatile only */
          printf("@ B: hello: session agreed\n")
       :: m == PAY -> atomic { peer_pay(ans) }
       fi;
#ifndef BROKEN_CREDIT_BEFORE_PERSIST
       atomic { persist_b(); printf("@ B: saved\n") };  /* settle_command, then the answer leaves */
       atomic { b2l!ans; printf("@ B: answers %e\n", ans) };
#else
       atomic { b2l!ans; printf("@ B: answers %e\n", ans) };
       atomic { persist_b(); printf("@ B: saved\n") };
#endif
       b_lock = false
     } unless { b_crashes != seen }
  od
}

/* ---- The link loses any message and any answer. */
active proctype Link() {
  mtype m;
end_link:
  do
  :: a2l?m -> if :: l2b!m :: printf("@ link: loses %e\n", m) fi
  :: b2l?m -> if :: nfull(l2a) -> l2a!m :: printf("@ link: loses the answer %e\n", m) fi
  od
}

/* ---- Power cuts: an SE comes back with what its host last saved, no session,
 * its command gone. */
active proctype Power() {
  do
  :: atomic { a_crashes < CRASHES -> restore_a(); a_lock = false; a_crashes++;
              printf("@ A: power cut: back with its saved state\n") }
  :: atomic { b_crashes < CRASHES -> restore_b(); b_sess = false; b_lock = false; b_crashes++;
              printf("@ B: power cut: back with its saved state\n") }
  :: break
  od
}

/* ---- The payer's terminal, any number of times, in any order, racing the rest. */
active proctype PayerTerm() {
  do
  :: atomic { !a_lock && a_und && !doc_out -> doc_out = true;           /* zf wallet undelivered --out */
              printf("@ A's terminal: zf wallet undelivered --out: the payment, to the payee\n") }
  :: atomic { !a_lock && a_und && ack_out ->                             /* zf wallet answer ACK */
              printf("@ A's terminal: zf wallet answer (an ack)\n"); close_with_ack() }
  :: atomic { !a_lock && a_und && ref_out ->                             /* zf wallet answer REFUSAL */
              printf("@ A's terminal: zf wallet answer (a refusal)\n"); close_with_refusal() }
#ifdef CLOSE_ON_RECORD
  :: atomic { !a_lock && a_und && r_claimed -> a_und = false; a_rec = true; persist_a();  /* F2F CLOSE {id, record} */
              printf("@ A's terminal: F2F CLOSE with the registry's record of B's claim: delivered\n") }
#endif
  :: break
  od
}

/* ---- The payee's terminal, likewise. */
active proctype PayeeTerm() {
  mtype ans;
  do
  :: atomic { !b_lock && doc_out ->                                      /* zf wallet refuse FILE */
              printf("@ B's terminal: zf wallet refuse\n"); f2f_refuse(ans) }
  :: atomic { !b_lock && doc_out && !b_received && !claim_out -> claim_out = true;  /* CLAIM NOTE */
              printf("@ B's terminal: zf wallet receive: CLAIM NOTE signs a claim\n") }
  :: atomic { claim_out && !r_claimed -> r_claimed = true;               /* the registry */
              printf("@ registry: records B's claim\n") }
  :: atomic { !b_lock && doc_out && r_claimed && !b_received -> receive_note() }  /* RECEIVE NOTE */
  :: atomic { !b_lock && b_unrec && !claim_out -> claim_out = true;      /* F2F RECONCILE */
              printf("@ B's terminal: zf wallet reconcile: F2F RECONCILE signs a claim\n") }
  :: atomic { !b_lock && b_unrec && r_claimed -> b_unrec = false; persist_b();  /* F2F SETTLE */
              printf("@ B's terminal: F2F SETTLE on the registry's record: settled\n") }
  :: break
  od
}

/* ---- The value rules (models/README.md), over what the hosts saved and over
 * the live state. Each is named in the trail when it breaks. */
/* In flight: the payer holds it undelivered and the payee has not credited it.
 * A payment the payer closed on the registry's record of the payee's claim
 * counts as in flight too while the payee can still credit it (it has not
 * refused it): that is the most that record can mean. */
#define IN_FLIGHT(und, rec, cred, ref)  (((und) || ((rec) && !(ref))) && !(cred) -> AMT : 0)
#define CONSERVED      (pa_bal + pb_bal + IN_FLIGHT(pa_und, pa_rec, pb_cred, pb_ref) == TOTAL && \
                        a_bal + b_bal + IN_FLIGHT(a_und, a_rec, b_cred, b_ref) == TOTAL)
#define CREDIT_ONCE    (pb_credits <= 1 && b_credits <= 1)
#define REFUND_ONCE    (pa_refunds <= 1 && a_refunds <= 1)
#define CREDIT_XOR_REFUND (!(pa_refunds > 0 && pb_cred) && !(a_refunds > 0 && b_cred))
#define REFUSED_NEVER_CREDITED (!(pb_ref && pb_cred) && !(b_ref && b_cred))
#define ACK_MEANS_CREDITED     (!ack_out || pb_cred)
#define REFUSAL_MEANS_NEVER_CREDITED (!ref_out || (pb_ref && !pb_cred))
#define VALUE_RULES (CONSERVED && CREDIT_ONCE && REFUND_ONCE && CREDIT_XOR_REFUND && \
                     REFUSED_NEVER_CREDITED && ACK_MEANS_CREDITED && REFUSAL_MEANS_NEVER_CREDITED)

#define rule(ok, text)  if :: !(ok) -> printf(text); assert(ok) :: else -> skip fi
inline check_rules() {
  rule(CONSERVED, "VIOLATED: value created or lost (payer + payee + in flight != total)\n");
  rule(CREDIT_ONCE, "VIOLATED: the payee credited the payment twice\n");
  rule(REFUND_ONCE, "VIOLATED: the payer got the value back twice\n");
  rule(CREDIT_XOR_REFUND, "VIOLATED: the payer got the value back and the payee credited it\n");
  rule(REFUSED_NEVER_CREDITED, "VIOLATED: the payee credited a payment it refused\n");
  rule(ACK_MEANS_CREDITED, "VIOLATED: a signed ack exists for a payment the payee has not durably credited\n");
  rule(REFUSAL_MEANS_NEVER_CREDITED, "VIOLATED: a signed refusal exists for a payment the payee credited\n")
}

/* Waits, costing no states, until a state between two steps breaks a rule. */
active proctype Monitor() {
end_watch:
  atomic { !VALUE_RULES -> check_rules() }
}

/* ---- The end: nothing else can move (no power cut, no message in flight,
 * both terminals stopped). Both SEs are on, and the terminals finish as
 * docs/se-apdu.md tells them to; every payment must end exactly once. */
active proctype Finish() {
  mtype ans = ERR;
  timeout;
  atomic {
    printf("@ the end: no more power cuts or messages; the terminals finish\n");
    if
    :: a_und ->
       doc_out = true;                                   /* zf wallet undelivered --out */
       printf("@ A's terminal: zf wallet undelivered --out\n");
       if
       :: !b_received ->                                  /* zf wallet receive FILE, online */
          printf("@ B's terminal: zf wallet receive (claim, registry, RECEIVE NOTE)\n");
          claim_out = true; r_claimed = true; receive_note(); ans = ACK
       :: skip
       fi;
       if
       :: ans == ERR ->                                   /* zf wallet refuse FILE */
          printf("@ B's terminal: zf wallet refuse\n"); f2f_refuse(ans)
       :: else -> skip
       fi;
       printf("@ A's terminal: zf wallet answer\n");
       apply_answer(ans); persist_a()                     /* zf wallet answer */
    :: else -> skip
    fi;
    if
    :: b_unrec ->                                         /* zf wallet reconcile */
       printf("@ B's terminal: zf wallet reconcile: settled\n");
       claim_out = true; r_claimed = true; b_unrec = false; persist_b()
    :: else -> skip
    fi;
    printf("@ A holds %d, B holds %d; A undelivered %d; B credited %d time(s); A refunded %d time(s)\n",
           pa_bal, pb_bal, pa_und, pb_credits, pa_refunds);
    check_rules();
    rule(!pa_und && !pb_unrec, "VIOLATED: after the recovery a payment is still undelivered or unsettled\n");
    rule(pa_bal + pb_bal == TOTAL, "VIOLATED: after the recovery the balances do not add up\n");
    rule(pa_debits <= 1 && (pa_debits == 0 || pb_credits + pa_refunds == 1),
         "VIOLATED: after the recovery the payment did not end exactly once\n")
  }
}
