//! FreeSWITCH event socket (ESL) client. Filled in by the ESL work.
