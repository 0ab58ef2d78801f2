/* test_crc16.c - CRC16-XMODEM and Redis Cluster key slots (hash tags). */
#include "crc16.h"

#include "unit.h"

/* Bit-at-a-time reference CRC16-XMODEM, to cross-check the table. */
static uint16_t crc16_ref(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static int slot(const char *key) { return dl_key_slot(key, strlen(key)); }
static int whole(const char *key) { return dl_crc16(key, strlen(key)) & 16383; }

int main(void)
{
    /* CRC16-XMODEM check value and a few known CRCs. */
    CHECK_INT(dl_crc16("123456789", 9), 0x31C3);
    CHECK_INT(dl_crc16("", 0), 0);
    CHECK_INT(dl_crc16(NULL, 0), 0);
    CHECK_INT(dl_crc16("foo", 3), 0xAF96);
    CHECK_INT(dl_crc16("A", 1), 0x58E5);

    /* Slots as CLUSTER KEYSLOT reports them. */
    CHECK_INT(slot("foo"), 12182);
    CHECK_INT(slot("bar"), 5061);
    CHECK_INT(slot("hello"), 866);
    CHECK_INT(slot("somekey"), 11058);
    CHECK_INT(slot("foo{hash_tag}"), 2515);
    CHECK_INT(slot(""), 0);
    CHECK_INT(dl_key_slot(NULL, 0), 0);

    /* Hash tags: the first '{', the next '}' after it, non-empty content. */
    CHECK_INT(slot("{user1000}.following"), slot("{user1000}.followers"));
    CHECK_INT(slot("{user1000}.following"), slot("user1000"));
    CHECK_INT(slot("{user1000}.following"), 3443);
    CHECK_INT(slot("foo{}{bar}"), whole("foo{}{bar}"));
    CHECK_INT(slot("foo{}{bar}"), 8363);
    CHECK_INT(slot("foo{{bar}}zap"), slot("{bar"));
    CHECK_INT(slot("foo{{bar}}zap"), 4015);
    CHECK_INT(slot("foo{bar}{zap}"), slot("bar"));
    CHECK_INT(slot("{bar}"), slot("bar"));
    CHECK_INT(slot("a{b}c"), slot("b"));
    CHECK_INT(slot("{}"), whole("{}"));
    CHECK_INT(slot("{"), whole("{"));
    CHECK_INT(slot("}"), whole("}"));
    CHECK_INT(slot("}{"), whole("}{"));
    CHECK_INT(slot("foo{bar"), whole("foo{bar"));
    CHECK_INT(slot("foo}bar{"), whole("foo}bar{"));
    CHECK_INT(slot("foo}{bar}"), slot("bar"));
    /* dlock's keys: token, fence and wait keys of one lock share a slot. */
    CHECK_INT(slot("dlock:{job-42}"), slot("dlock:{job-42}:fence"));
    CHECK_INT(slot("dlock:{job-42}"), slot("dlock:{job-42}:wait"));
    CHECK_INT(slot("dlock:{job-42}"), slot("job-42"));
    /* A prefix with braces of its own still gives one slot per lock. */
    CHECK_INT(slot("{p{job}"), slot("{p{job}:fence"));

    /* Length, not NUL, ends the key; the tag may contain NUL bytes. */
    CHECK_INT(dl_key_slot("foo\0bar", 7), dl_crc16("foo\0bar", 7) & 16383);
    CHECK_INT(dl_key_slot("foo", 2), slot("fo"));
    CHECK_INT(dl_key_slot("x{a\0b}y", 7), dl_crc16("a\0b", 3) & 16383);
    CHECK_INT(dl_key_slot("{abc}", 4), whole("{abc"));

    /* Table against the bitwise reference, every slot in range. */
    unsigned seed = 12345;
    char buf[64];
    for (int n = 0; n < 2000; n++) {
        size_t len = (size_t)n % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (char)(seed >> 16);
        }
        CHECK_INT(dl_crc16(buf, len), crc16_ref(buf, len));
        int s = dl_key_slot(buf, len);
        CHECK(s >= 0 && s < 16384);
    }
    for (int c = 0; c < 256; c++) {
        char one = (char)c;
        CHECK_INT(dl_crc16(&one, 1), crc16_ref(&one, 1));
    }

    UNIT_DONE();
}
