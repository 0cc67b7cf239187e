/*
 * Controlled transfer (hold) at one bank, with confirm, release and the
 * bank's expiry racing each other, the bank killed at any point, terminals
 * retrying their documents, also while an earlier attempt is still in
 * flight, and the clock passing release_at at any moment (DESIGN.md §6.8,
 * docs/bank-api.md "Holds", src/bank/hold.cc). One hold of AMT from the
 * payer's account A to the payee's account B through the bank's hold account
 * H; models/README.md says what each part mirrors.
 *
 *   spin -a hold.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan -m100000
 *
 * The bank's transaction that ends a hold guards it twice: it takes the
 * hold's guard key "hold:<hold id>" (Store::apply, take_guard) and it writes
 * the hold row only if it is still held (close_hold). These hold too, each
 * with one of the two guards:
 *   GUARD_KEY_ONLY     the hold row is written whatever it says: the guard
 *                      key alone
 *   ROW_CHECK_ONLY     no guard key: the conditional write of the hold row alone
 *
 * Variants (spin -DNAME -a hold.pml), each of which must fail:
 *   SEPARATE_GUARDS    confirm, release and expiry each guard only their own
 *                      document id: no guard key, and confirm and release
 *                      check the hold row neither in the transaction nor
 *                      before it (the expiry still looks only at held holds)
 *   CHECK_THEN_ACT     the hold's status is checked in one step (the read
 *                      before the claim, the expiry's search for due holds)
 *                      and the money moves in a later transaction that takes
 *                      the key and writes the row without checking them
 *   EXPIRY_IN_MEMORY   the expiry deadline is a timer in the bank's memory,
 *                      armed when the hold is placed and lost when the bank
 *                      is killed
 *   DOC_EXPIRES        what Bank::verify does today: the SE documents' exp
 *                      (10 minutes after signing) may pass, and the bank
 *                      refuses an expired document as expired before it
 *                      looks in its table, a retry of one it committed too;
 *                      with RECEIPT_FIRST (holds) the bank answers a
 *                      document it committed with its receipt, expired or not
 */

#ifndef CRASHES
#define CRASHES 2          /* times the bank is killed (kill -9) and restarted */
#endif
#define A0      1          /* the payer's balance before: exactly the hold */
#define AMT     1          /* the hold */
#define TOTAL   A0         /* all the money there is */

/* Which guards the transaction that ends a hold has (see above). */
#if defined(SEPARATE_GUARDS) || defined(CHECK_THEN_ACT)
#define KEY_GUARD 0
#define ROW_GUARD 0
#elif defined(GUARD_KEY_ONLY)
#define KEY_GUARD 1
#define ROW_GUARD 0
#elif defined(ROW_CHECK_ONLY)
#define KEY_GUARD 0
#define ROW_GUARD 1
#else
#define KEY_GUARD 1
#define ROW_GUARD 1
#endif

/* The documents: the request, the payer's confirm, the payee's release, and
 * the bank's own expiry (id "<bank>:x:<hold id>"). NOBODY: no document. */
mtype = { NOBODY, REQ, CONF, REL, EXP };
#define NDOCS 6            /* mtype values are 1..5: arrays are indexed by them */

/* A rule checked where it is written: its message, then the assertion. */
#define rule(ok, text)  if :: !(ok) -> printf(text); assert(ok) :: else -> skip fi

/* ---- The bank's database (SQLite, synchronous=FULL): what a kill -9 leaves.
 * Each store transaction is one atomic step: it commits whole or not at all. */
short a = A0;              /* the payer's account */
short b;                   /* the payee's account */
short h;                   /* sys:hold:<CUR> */
bool placed;               /* the holds table has the row (placed as held) */
mtype ended_by = NOBODY;   /* the row's resolved_by: the document that ended it */
mtype guard = NOBODY;      /* guards["hold:<hold id>"]: the document that took it */
bool processed[NDOCS];     /* processed_documents holds the id */
#define held               (placed && ended_by == NOBODY)

/* ---- The registry: this bank's claims of the SE documents. The bank is
 * the only processor here, so every claim answers with its own record (the
 * first claim, or the same one again for the same processor and digest). */
bool registry[NDOCS];

/* ---- The bank's memory: gone when it is killed. A request being handled
 * belongs to the bank's life it started in (epoch); after a kill its
 * connection fails and its terminal may send the document again. */
byte epoch;
byte crashes;
#ifdef EXPIRY_IN_MEMORY
bool timer;                /* the expiry's deadline, armed when the hold is placed */
#define due_known          timer
#else
#define due_known          true   /* release_at is in the hold row */
#endif

/* ---- The clock: release_at has passed. It only moves forward. */
bool past;
#ifdef DOC_EXPIRES
bool docs_expired;         /* the SE documents' exp has passed too */
#ifdef RECEIPT_FIRST
#define fresh(d)           (!docs_expired || processed[d])
#else
#define fresh(d)           (!docs_expired)
#endif
#else
#define fresh(d)           true   /* exp is not modelled (models/README.md) */
#endif

/* ---- Ghosts, for the rules only. */
byte moved[NDOCS];         /* times each document moved money */
bool lost[NDOCS];          /* it was answered hold_resolved */
#define ends               (moved[CONF] + moved[REL] + moved[EXP])

/* ---- Answers. The terminal is told what the bank's store says now. */
inline answer_receipt(d) {
  printf("@ bank: %e: the stored receipt\n", d);
  rule(processed[d] && moved[d] == 1 && (d == REQ || ended_by == d),
       "VIOLATED: a receipt for a document that did not do what it says\n")
}
inline answer_expired(d) {
  printf("@ bank: %e: expired\n", d);
  rule(!processed[d], "VIOLATED: a retry of a document the bank committed is answered expired, not with its receipt\n")
}
inline answer_resolved(d) {
  printf("@ bank: %e: hold_resolved, evidence: %e's receipt\n", d, ended_by);
  lost[d] = true;
  rule(moved[d] == 0 && ended_by != NOBODY && ended_by != d && processed[ended_by],
       "VIOLATED: hold_resolved to a document that moved money, or with no other receipt as evidence\n")
}

/* ---- The transaction that ends the hold by the document d (end_hold and
 * expire_holds over Store::apply): insert-if-absent of d's id; the guard key
 * (KEY_GUARD); the hold row, if still held (ROW_GUARD); H to the payee
 * (confirm: to is b) or the payer (release, expiry: to is a). A key or a row taken by another
 * document rolls everything back: conflict, nothing moved. */
#define ALREADY_ENDED      ((KEY_GUARD && guard != NOBODY) || (ROW_GUARD && !held))
inline end_commit(d, to) {
  processed[d] = true;
  guard = d;               /* KEY_GUARD 0: nothing reads it */
  ended_by = d;
  h = h - AMT; to = to + AMT;
  moved[d]++;
  rule(registry[d] || d == EXP, "VIOLATED: money moved on a document the registry has no record of\n");
  printf("@ bank: %e commits: H -%d, the hold ended by %e (A %d, B %d, H %d)\n", d, AMT, d, a, b, h)
}

/* One attempt of the document d (CONF or REL) at the bank (Bank::end_hold),
 * in two steps. First the checks before the claim, in one read of the store,
 * and the registry claim: the claim touches only the registry, which only
 * the rules read, so making it one step with the checks hides no interleaving.
 * Then the transaction. A kill between the two ends the attempt: the
 * terminal's connection fails, and the registry keeps the claim. */
inline end_hold(d) {
  atomic {
    e = epoch;
    if
#ifdef DOC_EXPIRES
    :: !fresh(d) -> answer_expired(d); go = false
#endif
    :: fresh(d) && !placed -> printf("@ bank: %e: hold_unknown\n", d); go = false
    :: fresh(d) && placed && processed[d] -> answer_receipt(d); go = false
#ifndef SEPARATE_GUARDS
    :: fresh(d) && placed && !processed[d] && !held -> answer_resolved(d); go = false
    :: fresh(d) && placed && !processed[d] && held -> go = true
#else
    :: fresh(d) && placed && !processed[d] -> go = true
#endif
    fi;
    if
    :: go -> registry[d] = true; printf("@ registry: records the bank's claim of %e\n", d)
    :: else -> e = 0
    fi
  }
  if
  :: go ->
     if
     :: atomic { epoch == e ->
          if
          :: processed[d] -> answer_receipt(d)          /* the other attempt committed */
          :: !processed[d] && ALREADY_ENDED -> answer_resolved(d)
          :: !processed[d] && !ALREADY_ENDED && d == CONF -> end_commit(d, b)
          :: !processed[d] && !ALREADY_ENDED && d == REL -> end_commit(d, a)
          fi;
          go = false; e = 0 }
     :: atomic { epoch != e -> printf("@ %e: the bank died after the claim\n", d); go = false; e = 0 }
     fi
  :: else -> skip
  fi
}

/* ---- The terminals: each makes any number of attempts of its document.
 * Two attempts of one document may be in flight at once (a retry after a
 * timeout while the first is still at the bank), so the request and the
 * confirm each have two processes. Whoever submits the request
 * (`zf wallet hold submit`), Bank::hold: */
active [2] proctype Request() {
  byte e; bool go;
  do
  :: atomic {              /* a processed request gets its receipt; else the claim */
       e = epoch;
       if
#ifdef DOC_EXPIRES
       :: !fresh(REQ) -> answer_expired(REQ); go = false; e = 0
#endif
       :: fresh(REQ) && processed[REQ] -> answer_receipt(REQ); go = false; e = 0
       :: fresh(REQ) && !processed[REQ] -> go = true; registry[REQ] = true;
          printf("@ registry: records the bank's claim of REQ\n")
       fi }
     if
     :: go ->
        if
        :: atomic { epoch == e ->  /* ONE transaction: the id, A -amt, H +amt, the row */
             if
             :: processed[REQ] -> answer_receipt(REQ)
             :: else ->
                processed[REQ] = true; placed = true;
                a = a - AMT; h = h + AMT; moved[REQ]++;
#ifdef EXPIRY_IN_MEMORY
                timer = true;
#endif
                rule(registry[REQ], "VIOLATED: money moved on a document the registry has no record of\n");
                printf("@ bank: REQ commits: A -%d, H +%d, held (A %d, H %d)\n", AMT, AMT, a, h)
             fi;
             go = false; e = 0 }
        :: atomic { epoch != e -> printf("@ REQ: the bank died after the claim\n"); go = false; e = 0 }
        fi
     :: else -> skip
     fi
  :: break
  od
}

/* The payer's terminal with its hold.confirm (`zf wallet hold confirm`, `zf
 * wallet retry`), twice, and the one with the payee's hold.release, in
 * processes of their own. */
proctype Ending(mtype d) {
  byte e; bool go;
  do
  :: end_hold(d)
  :: break
  od
}

init {
  atomic { run Ending(CONF); run Ending(CONF); run Ending(REL) }
}

/* ---- The bank's expiry task (Bank::expire_holds, one thread): at start and
 * then periodically, the holds due (held, release_at passed: due_holds),
 * each in one transaction under the guard key, with the expiry's own id
 * inserted if absent. A kill in a pass ends it; the restarted bank looks
 * again. */
active proctype Expiry() {
  byte e;
end_idle:
  do
  :: atomic { past && held && due_known -> e = epoch; printf("@ bank: expiry: the hold is due\n") }
     if
     :: atomic { epoch == e ->
          if
          :: processed[EXP] || ALREADY_ENDED ->   /* a replay, or a confirm or release won */
             printf("@ bank: expiry: conflict, ended by %e; nothing moved\n", ended_by)
          :: else -> end_commit(EXP, a)
          fi;
          e = 0 }
     :: atomic { epoch != e -> printf("@ expiry: the bank died in the pass\n"); e = 0 }
     fi
  od
}

/* ---- The world: the clock passes release_at, and the bank is killed and
 * restarted with what it committed, at any moments. One step does both: the
 * bank does nothing while it is down, and the clock may pass before the kill
 * or after the restart, so a bank down at the deadline is the kill, the
 * clock, then the first pass of the restarted bank's expiry. */
active proctype World() {
  do
  :: atomic { !past -> past = true; printf("@ clock: release_at passes\n") }
#ifdef DOC_EXPIRES
  :: atomic { !docs_expired -> docs_expired = true; printf("@ clock: the documents' exp passes\n") }
#endif
  :: atomic { crashes < CRASHES -> crashes++; epoch++;
#ifdef EXPIRY_IN_MEMORY
              timer = false;
#endif
              printf("@ bank: killed (kill -9) and restarted\n") }
  :: break
  od
}

/* ---- The value rules (models/README.md), in every state. */
#define ENDS_ONCE      (ends <= 1 && moved[REQ] <= 1)
#define NOT_CREATED    (a + b <= TOTAL)
#define NOT_NEGATIVE   (a >= 0 && b >= 0 && h >= 0)
#define CONSERVED      (a + b + h == TOTAL)
#define WHO_IS_CREDITED (b == AMT * moved[CONF] && a == A0 - AMT * moved[REQ] + AMT * (moved[REL] + moved[EXP]))
#define AUDIT          (h == (held -> AMT : 0))
#define LOSERS_STILL   (!(lost[CONF] && moved[CONF] > 0) && !(lost[REL] && moved[REL] > 0))
#define VALUE_RULES    (ENDS_ONCE && NOT_CREATED && NOT_NEGATIVE && CONSERVED && WHO_IS_CREDITED && AUDIT && LOSERS_STILL)

inline check_rules() {
  rule(ENDS_ONCE, "VIOLATED: the hold ended twice (or was placed twice)\n");
  rule(NOT_CREATED, "VIOLATED: value created (payer + payee > total)\n");
  rule(NOT_NEGATIVE, "VIOLATED: an account below zero\n");
  rule(CONSERVED, "VIOLATED: payer + payee + hold account != total\n");
  rule(WHO_IS_CREDITED, "VIOLATED: the payee credited other than by confirm, or the payer other than by release or expiry\n");
  rule(AUDIT, "VIOLATED: the hold account is not the sum of the holds still held\n");
  rule(LOSERS_STILL, "VIOLATED: a document answered hold_resolved moved money\n")
}

active proctype Monitor() {
end_watch:
  atomic { !VALUE_RULES -> check_rules() }
}

/* ---- The end: once nothing else moves (every terminal stopped, the world
 * too, the bank up with what it committed), time passes release_at and the
 * expiry task does what it does; then the hold that was placed has ended
 * exactly once and the hold account is empty. */
active proctype Finish() {
  timeout;
  atomic { past = true; printf("@ the end: the clock is past release_at\n") }
  timeout;
  atomic {
    printf("@ A %d, B %d, H %d; placed %d, ended by %e\n", a, b, h, placed, ended_by);
    check_rules();
    rule(!placed || ends == 1, "VIOLATED: at the end the hold that was placed has not ended exactly once\n");
    rule(h == 0, "VIOLATED: at the end the hold account is not empty\n")
  }
}
